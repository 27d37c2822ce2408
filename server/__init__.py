"""Parley: a live-chat crowdsourcing server."""
