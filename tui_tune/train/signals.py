"""SIGTERM / SIGINT: ask the loop to stop after the current step instead of dying mid-step."""

from __future__ import annotations

import signal


class StopRequest:
    """Set by the signal handler; the loop checks it between steps (and agrees across ranks)."""

    def __init__(self):
        self.requested = False
        self.signal_name = ""

    def install(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def agreed(self, accelerator) -> bool:
        """True on every rank as soon as one rank was asked to stop (one tiny all-reduce)."""
        if accelerator.num_processes == 1:
            return self.requested
        import torch

        flag = torch.tensor([1.0 if self.requested else 0.0], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
