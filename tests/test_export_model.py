"""`tui-tune export RUN --merged DIR | --adapter DIR` on real tiny runs: the merged folder loads
with plain transformers and gives the logits of the adapter on its backbone, for every adapter
family and problem type; the adapter folder loads with peft; refusals are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import completed_run, read_events
from worker_env import worker_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export-model")]

SHORT = ["training.max_steps=6", "training.eval_every_steps=6", "prediction.num_samples=1",
         "training.evaluate_before_training=false",
         "logging.log_every_steps=1"]
RUNS = {  # name -> (preset, overrides)
    "lora": ("demo-tiny", ['adapter.method="lora"', "training.checkpoint_every_steps=3"]),
    "dora": ("demo-tiny", ['adapter.method="dora"']),
    "qlora": ("demo-tiny", ['adapter.method="qlora"', 'architecture.backbone_dtype="int4"',
                            'quantization.compute_dtype="float32"']),
    "ssf": ("demo-tiny", ['adapter.method="ssf"', "training.lr=0.05"]),
    "full": ("demo-tiny", ['adapter.method="full"']),
    "classify": ("demo-classify", ['adapter.method="lora"', "training.lr=0.01"]),
    "tokens": ("demo-tokens", ['adapter.method="lora"', "training.lr=0.01"]),
    "ssf-classify": ("demo-classify", ['adapter.method="ssf"', "training.lr=0.05",
                                       'adapter.unfreeze_layers=["layers.1.mlp.down_proj"]']),
}


def tui_tune(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_tune", *args], cwd=cwd, env=worker_env(),
                          capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, make_run_dir, demo_assets) -> Path:
    """One trained run per case, in one runs folder (trained once for the module)."""
    root = tmp_path_factory.mktemp("export-runs")
    for name, (preset, sets) in RUNS.items():
        data = {"demo-classify": [f'dataset.train_file="{demo_assets}/data/sentiment.jsonl"'],
                "demo-tokens": [f'general.backbone="{demo_assets}/encoder"',
                                f'dataset.train_file="{demo_assets}/data/ner.jsonl"']}
        completed_run(make_run_dir(root / name, [*SHORT, *sets, *data.get(preset, [])],
                                   preset=preset))
    return root


def export(runs: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    return tui_tune("export", "--runs-dir", str(runs), name, *args, cwd=runs.parent)


def exported(runs: Path, name: str, kind: str, checkpoint: str | None = None,
             **options) -> Path:
    """Export in this process (the `tui-tune export` command around it, a process of its own
    per call, is tested by the refusal tests below): the same functions, without paying
    torch's import a dozen times."""
    from tui_tune.train.export import export_adapter, export_merged

    out = runs.parent / "-".join([name, kind, checkpoint or "final", *map(str, options.values())])
    write = export_merged if kind == "merged" else export_adapter
    assert write(runs / name, out, checkpoint, **options) == out
    return out


def batch(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer(["12+30=", "a good day in Paris", "7+7=14 and more"], return_tensors="pt",
                     padding=True)


def logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(**inputs).logits


def assert_same_logits(merged, reference, plain, inputs) -> None:
    """The merged model's logits are the adapter's, and the adapter does change them (so a
    merge that left it out could not pass)."""
    expected = logits(reference, inputs)
    assert (expected - logits(plain, inputs)).abs().max() > 0.01
    torch.testing.assert_close(logits(merged, inputs), expected, atol=1e-4, rtol=1e-4)


def backbone(run_dir: Path, auto: str, **kwargs):
    import transformers

    from tui_tune.config.toml_io import read_toml

    path = read_toml(run_dir / "config.toml")["general"]["backbone"]
    return getattr(transformers, auto).from_pretrained(path, dtype=torch.float32, **kwargs)


def with_adapter(run_dir: Path, folder: Path, auto: str):
    """The adapter on its (unquantized) backbone, as peft loads it: the reference."""
    from peft import PeftModel

    labels = json.loads((folder / "config.json").read_text()).get("id2label") \
        if (folder / "config.json").is_file() else None
    kwargs = {"id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}} \
        if labels and auto != "AutoModelForCausalLM" else {}
    return PeftModel.from_pretrained(backbone(run_dir, auto, **kwargs), folder)


@pytest.mark.parametrize("name", ["lora", "dora", "qlora"])
def test_merged_causal_lm_gives_the_adapters_logits(runs, name):
    from transformers import AutoModelForCausalLM, GenerationConfig

    out = exported(runs, name, "merged", max_shard_size="200KB")
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in key for key in merged.state_dict())
    assert len(list(out.glob("model-*-of-*.safetensors"))) > 1  # sharded as asked
    assert (out / "model.safetensors.index.json").is_file()
    inputs = batch(out)
    reference = with_adapter(runs / name, runs / name / "final", "AutoModelForCausalLM")
    assert_same_logits(merged, reference, backbone(runs / name, "AutoModelForCausalLM"), inputs)
    assert merged.dtype == torch.float32  # qlora: its compute dtype, not 4-bit
    assert GenerationConfig.from_pretrained(out).max_new_tokens == 8  # prediction.max_new_tokens


def test_merged_folder_keeps_the_marker_chat_template_and_the_card_the_metrics(runs):
    from transformers import AutoTokenizer

    out = exported(runs, "lora", "merged")
    final = AutoTokenizer.from_pretrained(runs / "lora" / "final")
    assert AutoTokenizer.from_pretrained(out).chat_template == final.chat_template
    assert "<|answer|>" in final.chat_template
    card = (out / "README.md").read_text()
    last = read_events(runs / "lora", "eval")[-1]
    assert f"| val_loss | {last['val_loss']:.6g} |" in card
    assert f"| perplexity | {last['perplexity']:.6g} |" in card
    assert "## Loss curve" in card and "Train loss:" in card
    steps = read_events(runs / "lora", "step")
    assert f"last {steps[-1]['loss']:.4g} at step {steps[-1]['step']}" in card
    assert "train.jsonl" in card and "| adapter.r | 8 |" in card


@pytest.mark.parametrize("name, auto", [("classify", "AutoModelForSequenceClassification"),
                                        ("tokens", "AutoModelForTokenClassification")])
def test_merged_labelling_runs_give_the_adapters_logits_and_labels(runs, name, auto):
    import transformers

    out = exported(runs, name, "merged")
    merged = getattr(transformers, auto).from_pretrained(out)
    final = runs / name / "final"
    assert merged.config.id2label == {int(k): v for k, v in json.loads(
        (final / "config.json").read_text())["id2label"].items()}
    reference = with_adapter(runs / name, final, auto)
    plain = reference.get_base_model()
    inputs = batch(out)
    expected = logits(reference, inputs)
    with reference.disable_adapter():  # the backbone without the adapter and trained head
        assert (expected - logits(plain, inputs)).abs().max() > 0.01
    torch.testing.assert_close(logits(merged, inputs), expected, atol=1e-4, rtol=1e-4)


def test_merged_ssf_folds_scale_and_shift_into_weights_and_biases(runs):
    from transformers import AutoModelForCausalLM

    from tui_tune.train.adapters.ssf import load_ssf

    out = exported(runs, "ssf", "merged")
    merged = AutoModelForCausalLM.from_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    assert config["attention_bias"] and config["mlp_bias"]  # Llama's own switches
    inputs = batch(out)
    reference = load_ssf(backbone(runs / "ssf", "AutoModelForCausalLM"), runs / "ssf" / "final")
    assert_same_logits(merged, reference, backbone(runs / "ssf", "AutoModelForCausalLM"), inputs)


def test_merged_ssf_with_a_new_head_and_unfrozen_layers_gives_the_trained_logits(runs):
    """ssf_weights.pt holds the head and the unfrozen layer beside the scales and shifts."""
    from transformers import AutoModelForSequenceClassification

    from tui_tune.train.adapters.ssf import load_ssf

    final = runs / "ssf-classify" / "final"
    saved = torch.load(final / "ssf_weights.pt")
    assert any("score" in key for key in saved) and any("down_proj" in k and "ssf" not in k
                                                        for k in saved)
    out = exported(runs, "ssf-classify", "merged")
    merged = AutoModelForSequenceClassification.from_pretrained(out)
    labels = merged.config.id2label
    kwargs = {"id2label": labels, "label2id": {v: k for k, v in labels.items()}}
    reference = load_ssf(backbone(runs / "ssf-classify", "AutoModelForSequenceClassification",
                                  **kwargs), final)
    plain = backbone(runs / "ssf-classify", "AutoModelForSequenceClassification", **kwargs)
    inputs = batch(out)
    assert_same_logits(merged, reference, plain, inputs)


def test_an_ssf_folder_without_its_head_weights_is_refused(runs, tmp_path):
    """Folders saved before ssf_weights.pt held the head: merging them would draw it anew."""
    import shutil

    from tui_tune.train.errors import UserError
    from tui_tune.train.export import check_ssf_run
    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks import task_for

    old = tmp_path / "old"
    shutil.copytree(runs / "ssf-classify" / "final", old)
    saved = torch.load(old / "ssf_weights.pt")
    torch.save({k: v for k, v in saved.items() if k.endswith(("ssf_scale", "ssf_shift"))},
               old / "ssf_weights.pt")
    exp = read_experiment(runs / "ssf-classify")
    with pytest.raises(UserError, match="no weights for the new classification head"):
        check_ssf_run(exp, task_for(exp), old)
    check_ssf_run(exp, task_for(exp), runs / "ssf-classify" / "final")  # today's: fine


def test_ssf_shift_on_a_layer_no_setting_gives_a_bias_is_refused(demo_assets):
    """Llama's lm_head has no bias and no config switch for one: a shift there cannot fold,
    a zero shift can (and changes nothing)."""
    from transformers import AutoModelForCausalLM

    from tui_tune.train.adapters.ssf import apply_ssf
    from tui_tune.train.errors import UserError
    from tui_tune.train.export import fold_ssf
    from tui_tune.train.tasks import task_named

    model = AutoModelForCausalLM.from_pretrained(demo_assets / "model")
    inputs = {"input_ids": torch.tensor([[3, 4, 5, 6]])}
    apply_ssf(model, ["lm_head"])
    with torch.no_grad():
        model.lm_head.ssf_scale.fill_(1.5)
    before = logits(model, inputs)
    folded = fold_ssf(model, task_named("causal_lm"))
    torch.testing.assert_close(logits(folded, inputs), before)
    apply_ssf(folded, ["lm_head"])
    with torch.no_grad():
        folded.lm_head.ssf_shift.fill_(0.1)
    with pytest.raises(UserError, match="shift of lm_head cannot fold into this llama model"):
        fold_ssf(folded, task_named("causal_lm"))


def test_full_run_merged_is_its_final_and_has_no_adapter(runs):
    from transformers import AutoModelForCausalLM

    out = exported(runs, "full", "merged")
    inputs = batch(out)
    torch.testing.assert_close(
        logits(AutoModelForCausalLM.from_pretrained(out), inputs),
        logits(AutoModelForCausalLM.from_pretrained(runs / "full" / "final"), inputs))
    refused = export(runs, "full", "--adapter", str(runs.parent / "full-adapter"))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "no adapter to export" in refused.stderr
    assert "--merged" in refused.stderr and not (runs.parent / "full-adapter").exists()


def test_adapter_folder_loads_with_peft(runs):
    out = exported(runs, "lora", "adapter")
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md",
            "tokenizer.json"} <= {p.name for p in out.iterdir()}
    inputs = batch(out)
    torch.testing.assert_close(
        logits(with_adapter(runs / "lora", out, "AutoModelForCausalLM"), inputs),
        logits(with_adapter(runs / "lora", runs / "lora" / "final", "AutoModelForCausalLM"),
               inputs))
    assert "library_name: peft" in (out / "README.md").read_text()
    ssf_out = exported(runs, "ssf", "adapter")
    assert {"ssf_config.json", "ssf_weights.pt", "config.json"} <= {
        p.name for p in ssf_out.iterdir()}


def test_a_checkpoint_exports_its_own_weights(runs):
    from transformers import AutoModelForCausalLM

    out = exported(runs, "lora", "merged", "step-3")
    inputs = batch(out)
    step3 = with_adapter(runs / "lora", runs / "lora" / "checkpoints" / "step-3",
                         "AutoModelForCausalLM")
    step6 = with_adapter(runs / "lora", runs / "lora" / "final", "AutoModelForCausalLM")
    assert_same_logits(AutoModelForCausalLM.from_pretrained(out), step3, step6, inputs)
    assert "`checkpoints/step-3`" in (out / "README.md").read_text()
    missing = export(runs, "lora", "--merged", str(runs.parent / "x"), "--checkpoint", "step-4")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no complete checkpoint step-4 (complete ones: step-3, step-6)" in missing.stderr


def test_output_folder_refusals_and_force(runs):
    target = runs.parent / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    refused = export(runs, "lora", "--adapter", str(target))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "is not empty; pick another folder or add --force" in refused.stderr
    assert (target / "keep.txt").read_text() == "mine"
    for inside in (runs / "lora", runs, runs / "lora" / "final" / "x"):
        result = export(runs, "lora", "--merged", str(inside), "--force")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert (runs / "lora" / "final" / "adapter_model.safetensors").is_file()
    forced = export(runs, "lora", "--adapter", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip().splitlines()[-1] == str(target)
    assert not (target / "keep.txt").exists() and (target / "adapter_config.json").is_file()
    assert not list(runs.parent.glob("*.partial")) and not list(runs.parent.glob("*.replaced"))
    alone = export(runs, "lora", "--checkpoint", "step-3")
    assert alone.returncode == 2 and "go with --merged DIR or --adapter DIR" in alone.stderr


def test_a_failed_export_leaves_no_folder(tmp_path):
    from tui_tune.runs.export_folder import written_atomically

    target = tmp_path / "out"
    with pytest.raises(OSError), written_atomically(target) as partial:
        (partial / "model.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []
