"""SIGTERM and SIGINT ask the worker to stop after the current step; a second Ctrl-C aborts."""

from __future__ import annotations

import os
import signal

import pytest

from tui_tune.train.signals import StopRequest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_requests_a_stop_and_a_second_ctrl_c_aborts(signum):
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = StopRequest().install()
        assert not stop.requested
        os.kill(os.getpid(), signum)
        assert stop.requested and stop.signal_name == signal.Signals(signum).name
        os.kill(os.getpid(), signal.SIGTERM)  # more SIGTERMs: still a graceful stop
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_the_worker_notices_its_run_directory_deleted_or_replaced(tmp_path):
    import shutil

    from tui_tune.train.reporting import Reporter

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    reporter = Reporter(run_dir, rank=0)
    reporter.event("log", level="info", message="hello")
    assert not reporter.run_dir_gone()
    (run_dir / "events.jsonl").unlink()
    assert reporter.run_dir_gone()
    shutil.rmtree(run_dir)
    assert reporter.run_dir_gone()
    run_dir.mkdir()  # a new folder of the same name is not this run's
    (run_dir / "events.jsonl").write_text("")
    assert reporter.run_dir_gone()
    other = Reporter(run_dir, rank=1)  # ranks other than 0 write no events: the folder counts
    assert not other.run_dir_gone()
    shutil.rmtree(run_dir)
    assert other.run_dir_gone()
