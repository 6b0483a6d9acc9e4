"""The app side never pulls in the training stack (design.md section 1)."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "datasets", "accelerate", "bitsandbytes")


@pytest.mark.parametrize("module", ["tui_tune", "tui_tune.config", "tui_tune.cli",
                                    "tui_tune.cli.preset", "tui_tune.events", "tui_tune.rundir"])
def test_import_stays_light(module):
    code = (f"import sys, {module}; heavy = {HEAVY!r}; "
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def test_help_does_not_import_heavy_modules():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tui_tune", "--help"],
                            capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                if "|" in line}
    assert not imported & set(HEAVY)
    assert "usage: tui-tune" in result.stdout


def test_asking_for_kept_editor_changes_does_not_load_the_settings_schema():
    """Every start asks right after the runs screen's first frame, on the UI thread: importing
    the settings schema there (pydantic, ~0.3 s) held up the runs list."""
    code = ("import sys; from tui_tune.tui import recovery; recovery.kept(); "
            "print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
