"""The forked test worker (tests/worker_fork.py) behaves as `python -m tui_tune.train` does:
same exit status, output and events for the same run folder, in every test of a process."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import read_events
from worker_env import worker_env
from worker_fork import start_worker

BROKEN_CONFIG = "schema_version = 1\n[training\n"


def broken_run(folder):
    folder.mkdir()
    (folder / "config.toml").write_text(BROKEN_CONFIG)
    return folder


@pytest.mark.parametrize("test", ["first", "second"])  # pytest names each test in the env
def test_a_forked_worker_ends_as_a_fresh_one(tmp_path, test):
    forked = start_worker([str(broken_run(tmp_path / "forked"))], worker_env())
    assert forked is not None, "every test's worker forks (PYTEST_CURRENT_TEST differs)"
    out, err = forked.communicate(timeout=120)
    fresh = subprocess.run([sys.executable, "-m", "tui_tune.train",
                            str(broken_run(tmp_path / "fresh"))], env=worker_env(),
                           capture_output=True, timeout=120, check=False)
    assert forked.returncode == fresh.returncode == 1
    assert (out, err.replace(b"/forked/", b"/fresh/")) == (fresh.stdout, fresh.stderr)
    assert b"not valid TOML" in err and err.count(b"config.toml") == 1, err
    ends = [read_events(tmp_path / name, "end")[-1] for name in ("forked", "fresh")]
    assert ends[0]["status"] == ends[1]["status"] == "failed"
    assert ends[0]["error_type"] == ends[1]["error_type"] == "UserError"


def test_a_worker_with_an_environment_of_its_own_starts_fresh(tmp_path):
    usual = start_worker([str(broken_run(tmp_path / "usual"))], worker_env())
    assert usual is not None and usual.communicate(timeout=120) and usual.returncode == 1
    own = {**worker_env(), "TUI_TUNE_TEST_OWN_VARIABLE": "1"}  # libraries read some at import
    assert start_worker([str(tmp_path)], own) is None
    assert start_worker([str(tmp_path)], {**worker_env(),
                                          "TUI_TUNE_TESTS_FORK_WORKERS": "0"}) is None
