"""One list of launch checks (runs/preflight.py): the worker asks them again, so a config
launched by hand, without the app or the CLI, is refused with the launcher's own message."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from conftest import read_events, run_worker

from tui_tune.config.presets import resolve
from tui_tune.runs.preflight import WORKER_CHECKS, preflight, tracker_installed
from tui_tune.train.errors import UserError
from tui_tune.train.model import preflight as worker_preflight

CUDA = torch.cuda.device_count()
REFUSED = [['logging.tracker="neptune"'],
           ["architecture.pretrained=false", 'architecture.backbone_dtype="int4"',
            'adapter.method="qlora"']]
if not CUDA:
    REFUSED += [['environment.mixed_precision="fp16"'],
                ['architecture.attn_implementation="flash_attention_2"'],
                ['architecture.backbone_dtype="int8"', 'adapter.method="qdora"']]
if importlib.util.find_spec("liger_kernel") is None:
    REFUSED.append(["architecture.liger_kernel=true"])


def experiment(demo, *overrides):
    return resolve("demo-tiny", [f'general.backbone="{demo / "model"}"',
                                 f'dataset.train_file="{demo / "data" / "train.jsonl"}"',
                                 *overrides]).experiment


@pytest.mark.parametrize("overrides", REFUSED, ids=lambda o: o[-1])
def test_the_worker_refuses_what_the_launcher_refuses_with_its_message(demo_assets, overrides):
    exp = experiment(demo_assets, *overrides)
    [first, *_] = preflight(exp, CUDA)
    assert preflight(exp, CUDA, WORKER_CHECKS)[0] == first
    with pytest.raises(UserError) as info:
        worker_preflight(exp)
    assert info.value.setting == first.key and first.message in str(info.value)


def test_a_config_launched_by_hand_is_refused_before_loading(tmp_path, demo_assets,
                                                             make_run_dir):
    if CUDA:
        pytest.skip("fp16 is refused on machines without CUDA")
    run_dir = make_run_dir(tmp_path / "run", ['environment.mixed_precision="fp16"'])
    result = run_worker(run_dir)
    [end] = read_events(run_dir, "end")
    assert result.returncode != 0 and end["status"] == "failed"
    assert end["setting"] == "environment.mixed_precision"
    assert "fp16 needs a CUDA GPU" in end["message"]


def test_the_launcher_offers_the_trackers_accelerate_offers():
    from accelerate.tracking import get_available_trackers

    offered = {t.value for t in get_available_trackers()}
    for name in ("tensorboard", "wandb", "mlflow"):
        assert tracker_installed(name) == (name in offered), name
