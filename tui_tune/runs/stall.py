"""When a running run counts as stalled: no progress for many times its usual step gap.

A hung NCCL collective or a stuck dataloader leaves the worker alive and silent, so its status
stays `running`; this rule makes that visible. The gap is measured between logged step events
(so it includes logging_every_steps), and progress is the last step, eval or start event. An
evaluation longer than STALL_MIN_S and STALL_FACTOR gaps shows as stalled until its `eval`
event arrives.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

STALL_FACTOR = 10.0  # times the median gap between step events
STALL_MIN_S = 120.0  # never sooner: short gaps of a fast demo run are no reason to worry
WINDOW = 21  # step times looked at (20 gaps)


def stalled_for(step_times: Sequence[float], last_progress_t: float | None,
                now: float) -> float | None:
    """Seconds without progress when that is too long for this run, else None (also when
    fewer than two step times are known: no pace to judge by)."""
    times = list(step_times)[-WINDOW:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)
            if later > earlier]
    if not gaps or last_progress_t is None:
        return None
    idle = now - last_progress_t
    return idle if idle > max(STALL_MIN_S, STALL_FACTOR * statistics.median(gaps)) else None

