"""Reproducible installs: requirements.lock pins everything tui-tune[dev] needs but PyTorch,
`make install` installs from it, and the suite runs on exactly the locked versions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
sys.path.insert(0, str(ROOT / "tools"))
from write_lock import canonical, read_lock, torch_companions


def needed() -> dict[str, str]:
    """Installed name -> version of every distribution this checkout's pyproject.toml pulls in
    with its dev extra, transitively."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = project["dependencies"] + project["optional-dependencies"]["dev"]
    found: dict[str, str] = {}
    todo: list[tuple[list[str], tuple[str, ...]]] = [(roots, ())]
    while todo:
        requirements, extras = todo.pop()
        for text in requirements:
            req = Requirement(text)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = canonical(req.name)
            if key not in found:
                found[key] = metadata.version(req.name)
                todo.append((metadata.requires(req.name) or [], tuple(req.extras)))
    return found


def locked_part(found: dict[str, str]) -> dict[str, str]:
    return {n: v for n, v in found.items() if n not in {"torch"} | torch_companions()}


def test_lock_pins_every_package_the_project_needs_but_torch():
    text = LOCK.read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[a-z0-9-]+==[0-9][^\s+;@]*", line) for line in lines)
    pinned = read_lock(LOCK)
    assert "torch" not in pinned and not any(n.startswith("nvidia-cu") for n in pinned)
    missing = sorted(set(locked_part(needed())) - set(pinned))
    assert not missing, f"run `make lock`: {missing} are not in requirements.lock"
    assert "hatchling" in pinned  # the build backend is pinned too (--build-constraint)


@pytest.mark.skipif(os.environ.get("TUI_TUNE_UNLOCKED") == "1",
                    reason="make test-latest runs the newest releases on purpose")
def test_the_suite_runs_on_the_locked_versions():
    pinned = read_lock(LOCK)
    drift = {n: (pinned.get(n), v) for n, v in locked_part(needed()).items() if pinned.get(n) != v}
    assert not drift, f"installed differs from requirements.lock (make install): {drift}"


def make_dry_run(*args: str) -> str:
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_make_install_installs_from_the_lock_and_reruns_when_it_changes(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than every prerequisite: nothing to do
    assert "pip" not in make_dry_run("install", f"VENV={venv}")
    commands = make_dry_run("-W", "requirements.lock", "install", f"VENV={venv}")
    installs = [line for line in commands.splitlines() if "pip install" in line]
    assert len(installs) == 3 and all("-c requirements.lock" in line for line in installs)
    assert "--build-constraint requirements.lock -e '.[dev]'" in installs[-1]
    assert 'torch==2.13.0"' in installs[1] and "+cpu" not in commands


def test_vendored_wheels_are_locked_and_install_without_an_index(tmp_path):
    """Dependencies published only as an sdist (seqeval, rouge-score) come as wheels in vendor/,
    which make install finds: they install with the lock and no index at all."""
    wheels = sorted((ROOT / "vendor").glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["rouge_score", "seqeval"]
    pinned = read_lock(LOCK)
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        assert pinned[canonical(name)] == version, wheel.name
    installs = [line for line in make_dry_run("-W", "requirements.lock", "install",
                                              f"VENV={tmp_path / 'venv'}").splitlines()
                if "'.[dev]'" in line]
    assert "--find-links vendor" in installs[0]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--target", str(target), "-c", str(LOCK), "--find-links",
                    str(ROOT / "vendor"), "seqeval", "rouge-score"], check=True,
                   capture_output=True)
    assert (target / "seqeval" / "metrics" / "__init__.py").is_file()
    assert list(target.glob("seqeval-1.2.2.dist-info"))
    assert (target / "rouge_score" / "rouge_scorer.py").is_file()
