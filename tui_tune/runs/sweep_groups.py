"""A sweep's runs side by side: the lists (runs screen, `ls`, `sweep --list`) show its members
together under one summary (how many ended, the best validation loss and the values that got
it), so the combinations can be told apart and the best one picked."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from tui_tune.runs.listing import RunSummary, swept_text

ENDED = ("completed", "stopped", "failed", "oom", "died")


@dataclass
class SweepGroup:
    """One sweep in a list of runs: its members in the order they were queued."""
    sweep_id: str
    members: list[RunSummary]

    @property
    def run_id(self) -> str:  # the key the lists give the summary row
        return f"sweep:{self.sweep_id}"

    @property
    def preset(self) -> str:
        return self.members[0].preset if self.members else "?"

    @property
    def ended(self) -> int:
        return sum(m.status in ENDED for m in self.members)

    @property
    def best(self) -> RunSummary | None:
        """The member with the lowest validation loss (None before any evaluated)."""
        scored = [m for m in self.members
                  if m.best_val_loss is not None and math.isfinite(m.best_val_loss)]
        return min(scored, key=lambda m: m.best_val_loss) if scored else None

    def line(self) -> str:
        """`3 runs, 2 ended; best val loss 1.234 (lr=0.0001 r=8)`."""
        text = f"{len(self.members)} runs, {self.ended} ended"
        best = self.best
        if best is None:
            return text + "; no evaluation yet"
        return f"{text}; best val loss {best.best_val_loss:.4g} ({swept_text(best.swept)})"


def grouped(rows: Iterable[RunSummary]) -> list[RunSummary | SweepGroup]:
    """The rows in their order, each sweep's members moved together under a SweepGroup placed
    where its newest member was, oldest member first (the order the grid lists them)."""
    rows = list(rows)
    members: dict[str, list[RunSummary]] = {}
    for s in rows:
        if s.sweep_id:
            members.setdefault(s.sweep_id, []).append(s)
    out: list[RunSummary | SweepGroup] = []
    for s in rows:
        if not s.sweep_id:
            out.append(s)
        elif s.sweep_id in members:
            group = sorted(members.pop(s.sweep_id),
                           key=lambda m: (m.created_at or m.started_at or 0.0, m.run_id))
            out.append(SweepGroup(s.sweep_id, group))
            out.extend(group)
    return out
