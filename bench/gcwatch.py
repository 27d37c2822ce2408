"""The collector's pauses in a bench process: each one stops that process's event loop while it runs."""

from __future__ import annotations

import time
from typing import Any


class GcPauses:
    """The collector's pauses, by generation: each stops the event loop for as long as it runs."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(1000 * (time.perf_counter() - self._started))

    def reset(self) -> None:
        for pauses in self.pauses.values():
            pauses.clear()

    def summary(self, wall: float) -> str:
        parts = []
        for generation, pauses in self.pauses.items():
            if pauses:
                parts.append(f"gen{generation} {len(pauses)}x max {max(pauses):.1f} ms")
        total = sum(sum(p) for p in self.pauses.values())
        return f"GC {100 * total / 1000 / wall:.1f} % of the time: " + (", ".join(parts) or "none")

    def figures(self) -> dict[str, float]:
        every = [p for pauses in self.pauses.values() for p in pauses]
        return {"gc_count": len(every), "gc_ms": round(sum(every), 1), "gc_max_ms": round(max(every, default=0.0), 1)}
