"""The monitor's feed: reads one run directory and posts what changed to the monitor screen.

It runs as the screen's thread worker (Textual cancels it when the screen closes or the app
ends). It loads the events (recent part first, then the whole history), then polls for new
lines, console.log, the run status and the GPUs. It never touches widgets: it only posts
messages, and the screen (on the app thread) updates itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from textual.message import Message
from textual.worker import get_current_worker

from tui_tune.rundir import RunDir
from tui_tune.runs.follow import EventFollower
from tui_tune.tui.history_cache import load_history
from tui_tune.tui.image_files import read_newest
from tui_tune.tui.run_data import RunSeries, fold_new, read_recent

POLL_S = 0.2
SLOW_POLL_S = 2.0


class RunLoaded(Message):
    """All events so far (partial=True: only the recent part; the rest follows)."""

    def __init__(self, series: RunSeries, partial: bool):
        super().__init__()
        self.series = series
        self.partial = partial


class RunBatch(Message):
    """Events appended since the last batch."""

    def __init__(self, series: RunSeries):
        super().__init__()
        self.series = series


class RunSideInfo(Message):
    """Slower-changing facts: status, console.log tail, GPU readings (None = unchanged)."""

    def __init__(self, status: str | None, console: str | None, gpus: list | None,
                 gpu_note: str | None, times: tuple[float | None, float | None] | None = None):
        super().__init__()
        self.status = status
        self.times = times  # (elapsed, ETA) as the runs list and `ls` compute them
        self.console = console
        self.gpus = gpus
        self.gpu_note = gpu_note


class RunFeed:
    """What the monitor shows of one run, read off the app thread; `run` is the worker."""

    def __init__(self, run_dir: Path, post: Callable[[Message], object],
                 poll_s: float = POLL_S, sample_gpus: bool = True):
        self.run_dir = Path(run_dir)
        self.post = post
        self.poll_s = poll_s
        self.sample_gpus = sample_gpus
        self.first_drawn = threading.Event()  # set by the screen once the recent part shows
        self._console_mtime = 0.0
        self._last_side = 0.0
        self._facts = RunSeries()  # latest start time and end event, for the status
        self._whole_read = False  # the times' summary waits until the history is loaded

    def run(self) -> None:
        """Load, then poll until the worker running it is cancelled."""
        stopped = get_current_worker().cancelled_event
        try:
            follower = self._initial_load()
        except OSError:  # the run directory went away while loading
            follower = EventFollower(RunDir(self.run_dir).events)
        while not stopped.is_set():
            try:
                self._poll_events(follower)
                if time.monotonic() - self._last_side >= SLOW_POLL_S:
                    self._last_side = time.monotonic()
                    self._poll_side()
            except OSError:
                pass  # deleted or unreadable for a moment: try again at the next poll
            stopped.wait(self.poll_s)
        follower.close()

    def _note(self, series: RunSeries) -> RunSeries:
        """Keep the facts the status needs; decode the newest samples' images here, off the
        app thread (a multimodal run's; the panel then finds them decoded)."""
        if series.samples and series.samples[-1].images:
            read_newest(series.samples)
        if series.last_start_t is not None:
            self._facts.last_start_t = series.last_start_t
        if series.end:
            self._facts.end = series.end
        return series

    def _initial_load(self) -> EventFollower:
        recent, start, end = read_recent(self.run_dir, max_bytes=2 << 20)
        self._note(recent)
        if start > 0:
            self.post(RunLoaded(recent, partial=True))
            with ThreadPoolExecutor(1) as pool:
                # with the worker's step index the history is mostly file reads and numpy
                # copies (the GIL let go): read it while the app draws its first frame; without
                # one, decoding holds the GIL, so it waits for that frame
                early = pool.submit(self._history, start) \
                    if RunDir(self.run_dir).step_index.exists() else None
                self.first_drawn.wait(2.0)
                self._poll_side()
                self._last_side = time.monotonic()
                full, keep = early.result() if early is not None else self._history(start)
            full.extend_from(recent)
            recent = full
            self._whole_read = True
        else:
            keep = None
            self._whole_read = True
            self._poll_side()
            self._last_side = time.monotonic()
        self.post(RunLoaded(recent, partial=False))
        if keep is not None:  # after the history shows: the next open reads it from there
            keep()
        return EventFollower.at_offset(RunDir(self.run_dir).events, end)

    def _history(self, stop: int) -> tuple[RunSeries, Callable[[], None] | None]:
        """The older part (bytes before `stop`) and what keeps its cache (history_cache)."""
        return load_history(self.run_dir, stop, chunk_bytes=4 << 20, pause_s=0.004)

    def _poll_events(self, follower: EventFollower) -> None:
        series, restarted = fold_new(follower)
        if restarted:
            self._facts = RunSeries()
            self.post(RunLoaded(self._note(series), partial=False))
        elif series.events:
            self.post(RunBatch(self._note(series)))

    def _poll_side(self) -> None:
        status = self._status()
        self.post(RunSideInfo(status, self._console(), *self._gpus(), times=self._times(status)))

    def _status(self) -> str | None:
        try:
            from tui_tune.runs.status import run_state
            from tui_tune.runs.summary import EventSummary
            end = self._facts.end
            summary = EventSummary(segment_start_t=self._facts.last_start_t,
                                   end=end if end.get("status") else None)
            return run_state(self.run_dir, None, summary).status
        except Exception:  # noqa: BLE001 - a status we cannot read is shown as unknown
            return None

    def _times(self, status: str | None) -> tuple[float | None, float | None] | None:
        """Elapsed and ETA from the same summary and computation as the runs list and `ls`
        (the process's shared summary cache: only new lines are read)."""
        if not self._whole_read or status is None:
            return None
        try:
            from tui_tune.runs.summary import shared_summary
            summary = shared_summary(RunDir(self.run_dir).events)
            return summary.shown_times(status == "running", time.time())
        except Exception:  # noqa: BLE001 - times we cannot read are shown as unknown
            return None

    def _console(self) -> str | None:
        path = RunDir(self.run_dir).console_log
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        if mtime == self._console_mtime:
            return None
        self._console_mtime = mtime
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 16384))
            return handle.read().decode("utf-8", errors="replace")

    def _gpus(self) -> tuple[list | None, str | None]:
        if not self.sample_gpus:
            return [], "GPU sampling off"
        try:
            from tui_tune.monitor import gpu_unavailable_reason, sample_gpus
            readings = sample_gpus()
            return readings, (None if readings else (gpu_unavailable_reason() or "no GPU"))
        except Exception as error:  # noqa: BLE001 - NVML trouble must not stop the monitor
            return [], f"no GPU ({error})"
