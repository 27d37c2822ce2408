"""Summarize a py-spy `--format raw` profile (collapsed stacks): where the server's samples go.

`python -m bench.profile bench/results/<tag>-parley-profile.txt [--top 25] [--thread main]`
prints the functions with the most samples, inclusive (anywhere on the stack) and self (on top).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['name']} ({path})"


def summarize(path: Path, top: int, thread: str) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        frames = match["stack"].split(";")
        if thread and thread not in frames[0]:
            continue
        count = int(match["count"])
        total += count
        names = [_frame(f) for f in frames[1:]] or [_frame(frames[0])]
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    out = [f"{total} samples{f' (thread matching {thread!r})' if thread else ''}", "", "inclusive:"]
    out += [f"{100 * n / total:6.1f}%  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "self:"]
    out += [f"{100 * n / total:6.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", default="", help="only stacks whose thread label contains this")
    args = parser.parse_args()
    sys.stdout.write(summarize(args.path, args.top, args.thread) + "\n")


if __name__ == "__main__":
    main()
