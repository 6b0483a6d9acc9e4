"""Direct worker runs for tests, forked from a process that imported the worker's libraries once.

Every `python -m tui_tune.train RUN_DIR` spends ~7 s of CPU importing torch, transformers and
peft before it reads its config (measured on the 2-core CI box: 8 short runs took 100 s as
fresh interpreters, 40 s forked), and the suite runs some sixty such workers. Here each is a
fork of a multiprocessing forkserver that imported them once per test process: still a
process of its own, with its own signals, files, exit status, stdout and stderr, running the
worker's real entry point (`tui_tune.train.__main__.main`). What only a fresh interpreter
shows (the worker's own start, `accelerate launch`) is tested where runs are launched the way
users launch them (tests/test_worker_start.py, the runs CLI, sweeps and the app).
TUI_TUNE_TESTS_FORK_WORKERS=0 makes every worker a fresh interpreter again.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# what the worker imports before it reads a config; the rest (vision, datasets) as it goes
PRELOAD = ["torch", "transformers", "peft", "accelerate", "tui_tune.train.worker",
           "tui_tune.train.loop", "tui_tune.train.setup"]

# set by pytest for each test: no library reads it as it is imported
PER_TEST = ("PYTEST_CURRENT_TEST",)

_context = None
_server_env: dict[str, str] | None = None


def _lasting(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in PER_TEST}


def _worker_main(argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    """In the forked process: the caller's environment, stdout and stderr to files (as a pipe
    would take them), then the worker's entry point; its return value is the exit status."""
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - for the process
    from tui_tune.train.__main__ import main

    sys.argv = ["python -m tui_tune.train", *argv]
    sys.exit(main(argv))


class ForkedWorker:
    """A started worker, with what the tests use of subprocess.Popen."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.args = [sys.executable, "-m", "tui_tune.train", *argv]
        self._folder = Path(tempfile.mkdtemp(prefix="worker-output-"))
        self._process = _context.Process(target=_worker_main, args=(
            argv, env, str(self._folder / "stdout"), str(self._folder / "stderr")))
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)  # the forkserver starts with it (the first time)
        try:
            self._process.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Waits (killing it after `timeout`, as subprocess.run does) and returns the
        output, removing the files that held it."""
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self._process.join()
            raise
        try:
            return ((self._folder / "stdout").read_bytes(),
                    (self._folder / "stderr").read_bytes())
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


def start_worker(argv: list[str], env: dict[str, str]) -> ForkedWorker | None:
    """`python -m tui_tune.train *argv`, forked. None where `env` is not the forkserver's (it
    starts with the first call's): libraries read some variables as they are imported
    (HF_HUB_OFFLINE), so only a fresh interpreter sees another environment."""
    global _context, _server_env
    if env.get("TUI_TUNE_TESTS_FORK_WORKERS") == "0":
        return None
    if _server_env is not None and _lasting(env) != _server_env:
        return None
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
        _server_env = _lasting(env)
    return ForkedWorker(argv, env)


def forked_worker(argv: list[str], env: dict[str, str], timeout: float
                  ) -> subprocess.CompletedProcess | None:
    """start_worker to its end: what subprocess.run(capture_output=True, text=True) returns."""
    worker = start_worker(argv, env)
    if worker is None:
        return None
    out, err = worker.communicate(timeout)
    return subprocess.CompletedProcess(worker.args, worker.returncode,
                                       out.decode(errors="replace"), err.decode(errors="replace"))
