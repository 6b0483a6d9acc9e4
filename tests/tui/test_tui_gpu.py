"""The monitor's GPU panel with a real run on a real GPU: NVML readings, not a fixture.

Elsewhere the panel is tested through `gpu_text` with hand-made readings; this is the one place
where the app samples NVML itself while a bf16 run holds memory on the card.
"""

from __future__ import annotations

import re

import pytest
from test_runs_process import console, create_run, reached_step, wait_for

from tests.tui.conftest import wait_for as wait_in_app
from tui_tune.monitor import gpu_count, sample_gpus
from tui_tune.runs.control import stop
from tui_tune.runs.launch import launch
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.monitor import MonitorScreen

pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(
    gpu_count() == 0, reason="needs a CUDA GPU (NVML sees none)")]

MEMORY = re.compile(r"mem \S* ?(\d+\.\d)/(\d+)G")


async def test_monitor_gpu_panel_reads_nvml_while_a_run_trains(workdir, tmp_path, demo_assets):
    run_dir = create_run(tmp_path, demo_assets, "training.max_steps=5000",
                         'environment.mixed_precision="bf16"', "environment.gpus=[0]")
    launch(run_dir)
    try:
        wait_for(reached_step(run_dir, 3), 180, "the first steps")
        app = TuneApp(start=lambda: MonitorScreen(run_dir, read_only=True))
        async with app.run_test(size=(120, 40)) as pilot:
            panel = app.screen.query_one("#gpu-text")

            def reading() -> re.Match | None:
                return MEMORY.search(str(panel.render()))

            await wait_in_app(pilot, lambda: reading() is not None, timeout=30)
            text = str(panel.render())
            print("GPU panel:", text)
            used, total = (float(g) for g in reading().groups())
            assert used > 0 and total > 10, text
            assert sample_gpus()[0].name[:18] in text, text
            assert re.search(r"util \d+%", text), text
    finally:
        assert stop(run_dir, grace_s=60) == "stopped", console(run_dir)
