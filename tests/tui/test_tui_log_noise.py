"""Library noise (bitsandbytes' optional kernel, libraries' deprecation warnings) is left out
of the monitor's log pane, which says how many lines it hid (issue 21 minor 19)."""

from __future__ import annotations

import pytest

from tests.tui.conftest import wait_for
from tui_tune.runs.log_noise import without_noise
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen

SITE = "/venv/lib/python3.11/site-packages"
CONSOLE = "\n".join([
    "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'",
    (f"{SITE}/transformers/modeling_utils.py:1234: FutureWarning: `torch_dtype` is deprecated! "
    "Use `dtype` instead!"),
    "  warnings.warn(",
    "[info] loading model",
    f"{SITE}/torch/utils/checkpoint.py:87: DeprecationWarning: old API",
    "  return fn(*args)",
    "/work/my_reward.py:3: FutureWarning: the user's own warning stays",
    "  warnings.warn(",
    "[info] training: 40 steps",
]) + "\n"


def test_only_library_noise_is_left_out():
    text, dropped = without_noise(CONSOLE)
    assert dropped == 3
    assert text.splitlines() == ["[info] loading model",
                                 ("/work/my_reward.py:3: FutureWarning: the user's own warning "
                                 "stays"), "  warnings.warn(", "[info] training: 40 steps"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_monitors_log_pane_hides_library_noise(make_run, size):
    run = make_run("20260101-000000-demo-tiny", console=CONSOLE)
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=size) as pilot:
        log = app.screen.query_one("#log-text")
        await wait_for(pilot, lambda: "training: 40 steps" in str(log.render()))
        text = str(log.render())
        assert "gemm_4bit" not in text and "torch_dtype" not in text and "old API" not in text
        assert text.startswith("(3 library warnings hidden; console.log has them)")
        assert "[info] loading model" in text and "the user's own warning" in text
