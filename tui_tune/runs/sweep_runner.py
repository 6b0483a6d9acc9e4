"""The detached process that runs a sweep's queued runs: one at a time, or one per listed GPU.

    python -m tui_tune.runs.sweep_runner SWEEP_DIR

SIGTERM (from stop_sweep) stops the running members gracefully and exits; queued runs stay
queued. Progress goes to SWEEP_DIR/runner.log.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from tui_tune.rundir import RunDir
from tui_tune.runs.files import read_json, update_run_json
from tui_tune.runs.sweep import SWEEP_JSON

POLL_S = 1.0


class SweepRunner:
    def __init__(self, sweep_dir: Path):
        self.sweep_dir = Path(sweep_dir).resolve()
        self.runs_root = self.sweep_dir.parent.parent
        self.stopping = False
        self.assigned: dict[str, list[int] | None] = {}  # run id -> its GPUs (None: default)

    def _config(self) -> dict:
        return read_json(self.sweep_dir / SWEEP_JSON) or {}

    def run(self) -> int:
        from tui_tune.runs.children import reap_children
        from tui_tune.runs.status import run_status

        while not self.stopping and not self._config().get("stop_requested"):
            config = self._config()
            statuses = {r: run_status(self.runs_root / r) for r in config.get("runs", [])
                        if (self.runs_root / r).is_dir()}
            running = [r for r, s in statuses.items() if s == "running"]
            queued = [r for r, s in statuses.items() if s == "queued"]
            if not running and not queued:
                log(f"sweep finished: {statuses}")
                return 0
            for run_id, gpus in self._free_slots(config.get("gpus"), running, queued):
                self._start(run_id, gpus)
            reap_children()
            time.sleep(POLL_S)
        self._stop_running()
        return 0

    def _free_slots(self, gpus: list[int] | None, running: list[str], queued: list[str]):
        """(run id, its GPUs) to start now: one run at a time, or one per free listed GPU."""
        if not gpus:
            return [(queued[0], None)] if queued and not running else []
        busy = {g for r in running for g in self._gpus_of(r)}
        free = [g for g in gpus if g not in busy]
        return [(run_id, [gpu]) for run_id, gpu in zip(queued, free)]

    def _gpus_of(self, run_id: str) -> list[int]:
        """The GPUs a running member holds, from its run.json (so a restarted runner knows)."""
        if run_id in self.assigned:
            return self.assigned[run_id] or []
        info = read_json(RunDir(self.runs_root / run_id).run_json) or {}
        devices = info.get("cuda_visible_devices")
        if not isinstance(devices, str):
            return []
        return [int(x) for x in devices.split(",") if x.strip().isdigit()]

    def _start(self, run_id: str, gpus: list[int] | None) -> None:
        from tui_tune.runs.launch import LaunchError, launch

        run_dir = self.runs_root / run_id
        try:
            pid = launch(run_dir, gpu_ids=gpus)
            self.assigned[run_id] = gpus
            log(f"started {run_id} (pid {pid}{f', GPUs {gpus}' if gpus else ''})")
        except LaunchError as error:
            update_run_json(run_dir, status="failed", ended_at=time.time(),
                            reason=f"could not start: {error}")
            log(f"could not start {run_id}: {error}")

    def _stop_running(self) -> None:
        from tui_tune.runs.control import stop
        from tui_tune.runs.status import run_status

        for run_id in self._config().get("runs", []):
            run_dir = self.runs_root / run_id
            if run_dir.is_dir() and run_status(run_dir) == "running":
                log(f"stopping {run_id}: {stop(run_dir)}")
        log("sweep stopped")


def log(message: str) -> None:
    print(time.strftime("%Y-%m-%d %H:%M:%S"), message, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / SWEEP_JSON).is_file():
        print("usage: python -m tui_tune.runs.sweep_runner SWEEP_DIR (holding sweep.json)",
              file=sys.stderr)
        return 2
    runner = SweepRunner(Path(argv[0]))

    def request_stop(signum: int, frame: object) -> None:
        runner.stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return runner.run()


if __name__ == "__main__":
    raise SystemExit(main())
