"""Small CLI habits from issue 21: a completed run is not resumed, a closed pipe ends a
command quietly, `preset validate` lists every problem of a file in one pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.test_runs_cli import finished_run, tui_tune
from tui_tune.runs.store import RunStore


def test_resume_of_a_completed_run_refuses_and_touches_nothing(preset_workdir):
    run_dir = finished_run(RunStore())
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = tui_tune("resume", run_dir.name, "--detach", cwd=preset_workdir)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"tui-tune: {run_dir.name}: completed; nothing to "
                                            "resume"), result.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert json.loads((run_dir / "run.json").read_text()).get("launches") is None


def test_output_into_a_closed_pipe_ends_quietly(preset_workdir):
    """`tui-tune preset schema | head`, `tui-tune ls --json | head`: the reader is gone; the
    command exits without a BrokenPipeError traceback."""
    store = RunStore()
    for _ in range(3):
        finished_run(store)
    for args in (["preset", "schema"], ["ls", "--json"], ["ls"], ["sweep", "--list"]):
        proc = subprocess.Popen([sys.executable, "-m", "tui_tune", *args], cwd=preset_workdir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "80"})
        proc.stdout.close()  # as `head` does once it has its lines
        stderr = proc.stderr.read().decode()
        # 0, or 1 where rich saw the closed pipe itself (its on_broken_pipe): never an error
        assert proc.wait(timeout=60) in (0, 1), stderr
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, (args, stderr)


def test_preset_validate_lists_every_problem_as_the_readme_shows(tmp_path):
    """The README's presets/broken.toml, validated: every problem of the file in one pass
    (an unknown setting, a wrong value, two cross-field rules), exactly as the README says."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    toml = re.search(r"```toml\n# presets/broken.toml\n(.*?)```", readme, re.DOTALL).group(1)
    shown = [line for line in readme.splitlines()
             if line.startswith("ERR presets/broken.toml")]
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "broken.toml").write_text(toml)
    result = tui_tune("preset", "validate", "presets/broken.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == shown and len(shown) == 4, result.stdout


def test_the_ctrl_c_prompt_of_an_attached_run_takes_one_key(monkeypatch, capsys):
    """Issue 21: `s`, `d` or `c` act at once, without Enter (stdin is a real terminal here:
    a pseudo-terminal in its usual line mode, where input() would wait for the Enter)."""
    import pty
    import threading

    from tui_tune.cli.attach import _ask_stop_or_detach

    for key, choice in (("s", "stop"), ("c", "continue"), ("d", "detach")):
        master, slave = pty.openpty()
        with open(slave, "r", encoding="utf-8", closefd=True) as terminal:
            monkeypatch.setattr(sys, "stdin", terminal)
            answers: list[str] = []
            asking = threading.Thread(target=lambda out=answers: out.append(
                _ask_stop_or_detach("20260101-000000-demo-tiny")), daemon=True)
            asking.start()
            os.write(master, key.encode())  # no newline
            asking.join(10)
            assert answers == [choice], key
        os.close(master)
    assert "[s]top it" in capsys.readouterr().err
