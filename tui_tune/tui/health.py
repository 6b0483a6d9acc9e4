"""The monitor's health line: warnings a person should act on while a run trains.

Every rule works from the first few logged points (a run that diverges in its first ten
steps is flagged then, not after hundreds) and compares the run with its own history; each
message says since which step.
"""

from __future__ import annotations

import numpy as np

from tui_tune.runs.stall import WINDOW, stalled_for
from tui_tune.tui.formatting import duration
from tui_tune.tui.run_data import RunSeries

SPIKE_FACTOR = 10.0  # a grad norm this many times the median of the run's earlier ones
SPIKE_HISTORY = 5  # earlier grad norms needed before one can be a spike
SPIKE_LOOKBACK = 100  # the recent points checked for spikes
DIVERGE_EARLY = 1.5  # loss this many times its early level (the first logged loss) ...
DIVERGE_MIN = 3.0  # ... or this many times its running minimum: diverging
MIN_POINTS = 3  # logged losses needed before divergence is judged
FLAT_POINTS = 20  # logged losses a flat stretch must span
FLAT_BAND = 1e-2  # "flat": every loss within 1% of the stretch's recent level ...
FLAT_DRIFT = 1e-3  # ... and its first and last quarters within 0.1% of each other
HISTORY = 500  # points looked back over


def health_warnings(series: RunSeries, now: float | None = None) -> list[str]:
    """Short messages; an empty list means nothing looks wrong. `now` is given while the run
    is alive: then a run that stopped making progress is flagged as stalled."""
    warnings = [] if now is None else _stalled(series, now)
    steps, loss = series.step_values("step"), series.step_values("loss")
    warnings += _non_finite(steps, loss)
    warnings += _diverging(steps, loss)
    warnings += _grad_spikes(steps, series.step_values("grad_norm"))
    warnings += _overfitting(series, steps, loss)
    warnings += _flat(steps, loss)
    return warnings


def _stalled(series: RunSeries, now: float) -> list[str]:
    """No step (or eval) for far longer than this run's usual gap between steps."""
    times = series.step_values("t")
    start = series.last_start_t
    if start is not None:  # the pace of the current launch only (a resume starts afresh)
        times = times[times >= start]
    times = times[np.isfinite(times)][-WINDOW:]
    eval_times = series.eval_values("t")
    progress = [float(t) for t in (times[-1:].tolist() + eval_times[-1:].tolist() + [start])
                if t is not None and np.isfinite(t)]
    idle = stalled_for(times.tolist(), max(progress) if progress else None, now)
    if idle is None:
        return []
    steps = series.step_values("step")
    since = f" since step {int(steps[-1])}" if steps.size else ""
    return [f"stalled: no step for {duration(idle)}{since} (a hung collective or dataloader?)"]


def _trailing_start(flags: np.ndarray) -> int:
    """Index where the trailing run of True values in `flags` begins (len when none)."""
    false = np.flatnonzero(~flags)
    return int(false[-1]) + 1 if false.size else 0


def _non_finite(steps: np.ndarray, loss: np.ndarray) -> list[str]:
    offset = max(0, loss.size - 1000)
    bad = np.flatnonzero(~np.isfinite(loss[offset:]))
    if not bad.size:
        return []
    last = offset + int(bad[-1])
    if last == loss.size - 1:  # still: since the first of the trailing non-finite losses
        first = offset + _trailing_start(~np.isfinite(loss[offset:]))
        return [f"loss is {loss[last]} since step {int(steps[first])}"]
    return [f"loss was {loss[last]} at step {int(steps[last])}"]


def _diverging(steps: np.ndarray, loss: np.ndarray) -> list[str]:
    """Loss well above its early level or its running minimum, from the third logged point:
    the step it rose above that (and stayed) is named."""
    finite = np.isfinite(loss)
    if finite.sum() < MIN_POINTS:
        return []
    values, at = loss[finite], steps[finite]
    early = float(values[0])  # at initialisation: a healthy run seldom comes back above it
    running_min = np.minimum.accumulate(values)
    limit = np.minimum(DIVERGE_EARLY * early if early > 0 else np.inf,
                       np.where(running_min > 0, DIVERGE_MIN * running_min, np.inf))
    above = values > limit
    if not above[-1]:
        return []
    first = _trailing_start(above)
    return [(f"diverging since step {int(at[first])}: loss {values[-1]:.4g}, early level "
            f"{early:.4g}, lowest {float(running_min[-1]):.4g}")]


def _grad_spikes(steps: np.ndarray, grad: np.ndarray) -> list[str]:
    """A grad norm far above the median of the run's own earlier grad norms."""
    grad, steps = grad[-HISTORY:], steps[-HISTORY:]
    spikes = []
    for i in range(max(SPIKE_HISTORY, grad.size - SPIKE_LOOKBACK), grad.size):
        earlier = grad[:i]
        earlier = earlier[np.isfinite(earlier)]
        if earlier.size < SPIKE_HISTORY or not np.isfinite(grad[i]):
            continue
        median = float(np.median(earlier))
        if median > 0 and grad[i] > SPIKE_FACTOR * median:
            spikes.append((i, median))
    if not spikes:
        return []
    i, median = max(spikes, key=lambda s: grad[s[0]])
    text = f"grad-norm spike {grad[i]:.3g} at step {int(steps[i])} (running median {median:.3g})"
    if len(spikes) > 1:
        text += f", {len(spikes)} spikes since step {int(steps[spikes[0][0]])}"
    return [text]


def _overfitting(series: RunSeries, steps: np.ndarray, loss: np.ndarray) -> list[str]:
    """Validation loss rose over the last three evaluations while training loss fell; named
    from the evaluation where it was lowest."""
    val, val_steps = series.eval_values("val_loss"), series.eval_values("step")
    if val.size < 3 or not np.all(np.diff(val[-3:]) > 0):
        return []
    lo, hi = np.searchsorted(steps, [val_steps[-3], val_steps[-1]])
    window = loss[lo:hi + 1]
    window = window[np.isfinite(window)]
    if window.size < 4:
        return []
    half = window.size // 2
    if window[half:].mean() >= window[:half].mean():
        return []
    since = _trailing_start(np.concatenate([[False], np.diff(val) > 0])) - 1
    return [(f"validation loss rising since step {int(val_steps[since])} while training loss "
            "falls (overfitting?)")]


def _flat(steps: np.ndarray, loss: np.ndarray) -> list[str]:
    """No visible progress: a trailing stretch of at least FLAT_POINTS logged losses, all
    within 1% of its recent level, that did not move 0.1% from its start to its end."""
    finite = np.isfinite(loss[-HISTORY:])
    values, at = loss[-HISTORY:][finite], steps[-HISTORY:][finite]
    if values.size < FLAT_POINTS:
        return []
    level = float(np.median(values[-FLAT_POINTS // 4:]))
    scale = max(abs(level), 1e-12)
    start = _trailing_start(np.abs(values - level) <= FLAT_BAND * scale)
    stretch = values[start:]
    if stretch.size < FLAT_POINTS:
        return []
    quarter = stretch.size // 4
    if abs(stretch[:quarter].mean() - stretch[-quarter:].mean()) / scale >= FLAT_DRIFT:
        return []
    return [(f"loss flat since step {int(at[start])} ({stretch.size} logged steps at "
            f"{level:.4g})")]
