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
