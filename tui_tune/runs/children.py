"""Detached children this process started (run launchers, sweep runners), reaped now and then.

They live in their own sessions and outlive us, but while we live their exit codes come back
to us: without a wait() each one that ends lingers as a zombie in a long-lived app.
"""

from __future__ import annotations

import subprocess

_children: list[subprocess.Popen] = []


def adopt(process: subprocess.Popen) -> None:
    """Remember a detached child (launcher, sweep runner) so reap_children collects its exit."""
    _children.append(process)


def reap_children() -> None:
    """Collect exit codes of children started by this process that have ended."""
    for process in list(_children):
        if process.poll() is not None:
            _children.remove(process)
