"""Library noise in a run's console.log, left out where the log is shown (the monitor's log
pane, a died run's reason); console.log itself keeps every line.

The noise: bitsandbytes saying on every CPU start that it could not load an optional kernel
from the hub, and deprecation warnings that libraries raise about their own internals
(a FutureWarning or DeprecationWarning from a file under site-packages, with the source line
Python's warnings module prints after it). Nothing a user can act on; it pushed the run's own
lines out of view."""

from __future__ import annotations

import re

ALWAYS = (re.compile(r"Failed to load CPU gemm_4bit_forward from kernels-community"),)
# `path/site-packages/x.py:12: FutureWarning: ...`, as the warnings module writes it
LIBRARY_WARNING = re.compile(r"^\S*(site|dist)-packages\S*\.py:\d+: "
                             r"(FutureWarning|DeprecationWarning):")


def without_noise(text: str) -> tuple[str, int]:
    """The text without library noise, and how many warnings were left out."""
    kept, dropped, in_warning = [], 0, False
    for line in text.splitlines():
        if in_warning and line.startswith((" ", "\t")):
            continue  # the source line the warning points at
        in_warning = False
        if LIBRARY_WARNING.match(line):
            in_warning, dropped = True, dropped + 1
            continue
        if any(pattern.search(line) for pattern in ALWAYS):
            dropped += 1
            continue
        kept.append(line)
    return "\n".join(kept), dropped
