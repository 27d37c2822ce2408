"""Parley's load benchmark: simulated workers against a real server, with a bare-websocket baseline.

Run `python -m bench --help`; docs/performance.md says what is measured and what was found.
"""
