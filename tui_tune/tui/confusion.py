"""A classification run's confusion matrix as the monitor shows it: read from the latest eval
event (`confusion`: counts[true][predicted], `labels`: the class names), checked like every
other event value, and folded to the classes that fit a panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tui_tune.runs.event_values import count, text

MAX_CLASSES = 1000  # a bigger matrix (a hand-written line?) is not read: 1M cells at most


@dataclass(frozen=True)
class Confusion:
    """counts[true, predicted] over the validation rows of one evaluation."""

    step: int
    labels: tuple[str, ...]
    counts: np.ndarray  # int64, square, one row and column per label
    hidden: int = 0  # classes folded into the last one, "+N more" (see folded)

    @classmethod
    def read(cls, step: Any, confusion: Any, labels: Any) -> Confusion | None:
        """The matrix of an eval event, or None where it holds none or a malformed one (not
        square, a count that is not a whole number >= 0). Labels that are missing or do not
        match the matrix become the class ids."""
        if not isinstance(confusion, list) or not 0 < len(confusion) <= MAX_CLASSES:
            return None
        size = len(confusion)
        rows = []
        for row in confusion:
            if not isinstance(row, list) or len(row) != size:
                return None
            cells = [count(cell) for cell in row]
            if any(cell is None for cell in cells):
                return None
            rows.append(cells)
        names = [text(name) or "" for name in labels] if isinstance(labels, list) else []
        if len(names) != size:
            names = [str(i) for i in range(size)]
        return cls(count(step) or 0, tuple(names), np.array(rows, dtype=np.int64))

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def accuracy(self) -> float | None:
        """The share of rows on the diagonal (of the whole matrix: not of a folded one)."""
        total = int(self.counts.sum())
        return float(np.trace(self.counts)) / total if total else None

    def recall(self) -> np.ndarray:
        """Per true class: the share of its rows predicted as it (NaN for a class with none,
        and for "+N more", which is no class)."""
        rows = self.counts.sum(axis=1)
        recall = np.where(rows > 0, np.diag(self.counts) / np.maximum(rows, 1), np.nan)
        if self.hidden:
            recall[-1] = np.nan
        return recall

    def folded(self, keep: int) -> Confusion:
        """At most `keep` rows and columns: the `keep - 1` classes with the most validation rows
        (in class order) and one "+N more" class summing the rest, so every row still adds up
        to its class's rows. The whole matrix when it fits."""
        if self.size <= keep:
            return self
        keep = max(1, keep - 1)
        rows = self.counts.sum(axis=1)
        kept = np.sort(np.argsort(-rows, kind="stable")[:keep])
        rest = np.setdiff1d(np.arange(self.size), kept)
        groups = [*([i] for i in kept), rest]
        counts = np.array([[self.counts[np.ix_(r, c)].sum() for c in groups] for r in groups],
                          dtype=np.int64)
        return Confusion(self.step, (*(self.labels[i] for i in kept), f"+{rest.size} more"), counts,
                         hidden=int(rest.size))
