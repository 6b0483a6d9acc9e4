"""4-bit QLoRA and QDoRA on the CPU (bitsandbytes runs there): they train and learn."""

from __future__ import annotations

import pytest
from conftest import read_events, run_worker

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-quantized")]


@pytest.fixture(scope="module", params=["qlora", "qdora"])
def quantized_run(request, tmp_path_factory, make_run_dir):
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / request.param, [
        f'adapter.method="{request.param}"', 'architecture.backbone_dtype="int4"',
        'quantization.compute_dtype="float32"', "adapter.r=16", "adapter.alpha=32",
        "training.lr=0.03", "training.max_steps=80", "training.eval_every_steps=80",
        "logging.log_every_steps=10", "training.batch_size=16", "prediction.num_samples=1",
        "training.evaluate_before_training=true", 'adapter.unfreeze_layers=["lm_head"]'])  # a random backbone needs a trained head
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return request.param, run_dir


def test_quantized_adapter_learns_on_cpu(quantized_run):
    method, run_dir = quantized_run
    before, after = (e["val_loss"] for e in read_events(run_dir, "eval"))
    assert after < 0.6 * before, (method, before, after)
    start = read_events(run_dir, "start")[0]
    assert start["method"] == method and start["params_trainable"] < start["params_total"] / 2
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
