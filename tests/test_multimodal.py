"""multimodal_causal_lm on the demo's tiny LLaVA (coloured shapes): the batch and loss are TRL's
vision-language collator's and transformers' own, the prompt and every image token are masked,
LoRA adapts only the language model (and the projector when asked), freezing keeps parts as
they are, a run learns and its samples name their images, final/ loads with AutoProcessor +
AutoModelForImageTextToText and generates what the last evaluation showed, predictions are the
final model's, stop/resume replays the same run, and bad images are named by row and path."""

from __future__ import annotations

import csv
import json
import os

import pytest
from conftest import read_events, run_worker
from test_train_resume import losses, whole_and_resumed

from tui_tune.config.presets import resolve

PRESET = "demo-vision"
QUESTION = "What colour is the shape?"


def demo_sets(demo) -> list[str]:
    return [f'general.backbone="{demo / "vision"}"',
            f'dataset.train_file="{demo / "data" / "shapes.jsonl"}"']


def demo_experiment(demo, *sets: str):
    return resolve(PRESET, [*demo_sets(demo), *sets]).experiment


def loaded(demo, *sets: str):
    """(exp, task, tokenizer, model) as the worker builds them, on the CPU."""
    import torch

    from tui_tune.train.model import load_backbone, load_tokenizer
    from tui_tune.train.tasks import task_named

    exp = demo_experiment(demo, *sets)
    tokenizer = load_tokenizer(exp)
    task = task_named("multimodal_causal_lm")
    return exp, task, tokenizer, load_backbone(exp, tokenizer, torch.device("cpu"))


def test_the_demo_is_a_llava_on_the_demo_llama_with_pictures_of_shapes(demo_assets):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tui_tune.train.demo_vision import COLOURS, QUESTIONS, SHAPES

    rows = [json.loads(x) for x in (demo_assets / "data/shapes.jsonl").read_text().splitlines()]
    assert len(rows) == 1200 and {r["prompt"] for r in rows} == set(QUESTIONS.values())
    assert {r["answer"] for r in rows} == set(COLOURS) | set(SHAPES)
    with Image.open(demo_assets / "data" / rows[0]["image"]) as image:
        assert (image.size, image.mode) == ((32, 32), "RGB")
    processor = AutoProcessor.from_pretrained(demo_assets / "vision", use_fast=False)
    assert type(processor.image_processor).__name__.endswith("Pil")  # no torchvision needed
    model = AutoModelForImageTextToText.from_pretrained(demo_assets / "vision")
    assert model.config.model_type == "llava" and sum(p.numel() for p in model.parameters()) < 2e6
    exp = resolve(PRESET).experiment
    assert (exp.general.backbone, exp.dataset.train_file) == ("demo/vision",
                                                              "demo/data/shapes.jsonl")


# --- in process: the batch, the loss, which weights learn --------------------------------------

def test_image_settings_resize_pad_and_crop(tmp_path, demo_assets):
    """image_resize pads (with the processor's mean colour) or crops a wide picture to a
    square; image_size changes the processor's size, and so the pixels and image tokens."""
    from PIL import Image

    from tui_tune.train.tasks.multimodal_causal_lm import open_image

    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), (255, 0, 0)).save(path)
    padded = open_image(str(path), "pad", (127, 127, 127))
    assert padded.size == (40, 40) and padded.getpixel((0, 0)) == (127, 127, 127)
    assert padded.getpixel((20, 20)) == (255, 0, 0)
    assert open_image(str(path), "crop", (0, 0, 0)).size == (20, 20)
    assert open_image(str(path), "processor", (0, 0, 0)).size == (40, 20)
    exp, task, tokenizer, _ = loaded(demo_assets, "tokenizer.image_size=48")
    batch = task.train_collator(exp, tokenizer)(task.load_data(exp, tokenizer, 0).train[:2])
    assert batch["pixel_values"].shape == (2, 3, 48, 48)
    assert ((batch["input_ids"] == task.processor.image_token_id).sum(dim=1) == 36).all()


def test_generation_reads_images_as_training_does(demo_assets, monkeypatch):
    """image_resize applies to the prompts evaluation and predictions generate from too."""
    import torch

    from tui_tune.train.tasks import multimodal_causal_lm

    exp, task, tokenizer, model = loaded(demo_assets, 'tokenizer.image_resize="pad"')
    examples = task.load_data(exp, tokenizer, 0).val[:2]
    modes = []
    real = multimodal_causal_lm.open_image
    monkeypatch.setattr(multimodal_causal_lm, "open_image",
                        lambda path, mode, fill: modes.append(mode) or real(path, mode, fill))
    task.train_collator(exp, tokenizer)(examples)
    task.generate_answers(model, tokenizer, examples, exp.prediction, torch.device("cpu"), 2)
    assert modes == ["pad"] * 4


def test_the_batch_and_loss_are_trls_collator_and_transformers_labels_loss(demo_assets):
    """Our examples and collator give the batch TRL's DataCollatorForVisionLanguageModeling
    gives for the same prompt-completion rows (input ids, mask, pixels, labels), and our loss
    is the model's labels= loss on TRL's batch."""
    import torch
    from PIL import Image
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    exp, task, tokenizer, model = loaded(demo_assets)
    model.eval()
    examples = task.load_data(exp, tokenizer, 0).train[:6]
    ours = task.train_collator(exp, tokenizer)(examples)
    trl_collate = DataCollatorForVisionLanguageModeling(task.processor,
                                                        completion_only_loss=True)
    reference = trl_collate([
        {"images": [Image.open(e.images[0]).convert("RGB")],
         "prompt": [{"role": "user", "content": e.prompt}],
         "completion": [{"role": "assistant", "content": e.answer}]} for e in examples])
    for key in ("input_ids", "attention_mask", "pixel_values", "labels"):
        assert torch.equal(ours[key], reference[key]), key
    with torch.no_grad():
        expected = model(**reference).loss
        assert float(task.loss(model, ours, exp)) == pytest.approx(float(expected), rel=1e-6)


def test_labels_are_the_answer_alone_never_the_prompt_or_an_image_token(demo_assets):
    exp, task, tokenizer, _ = loaded(demo_assets)
    examples = task.load_data(exp, tokenizer, 0).train[:8]
    batch = task.train_collator(exp, tokenizer)(examples)
    image_id = task.processor.image_token_id
    assert ((batch["input_ids"] == image_id).sum(dim=1) == 16).all()  # 4 x 4 patches each
    assert (batch["labels"][batch["input_ids"] == image_id] == -100).all()
    for row, example in enumerate(examples):
        learned = batch["labels"][row][batch["labels"][row] != -100]
        assert tokenizer.decode(learned) == example.answer + tokenizer.eos_token
    # the estimated lengths that plan the batches are the real ones
    assert [len(e) for e in examples] == batch["attention_mask"].sum(dim=1).tolist()


def test_lora_adapts_the_language_model_and_the_projector_only_when_asked(demo_assets):
    from tui_tune.train.adapters import family_for

    for projector in (False, True):
        exp, task, _, model = loaded(demo_assets, 'adapter.method="lora"',
                                     f"adapter.lora_projector={str(projector).lower()}")
        model = family_for("lora").apply(model, exp, task)
        adapted = {n.split(".lora_A")[0] for n, _ in model.named_parameters() if "lora_A" in n}
        assert adapted and all(".language_model." in n or ".multi_modal_projector." in n
                               for n in adapted)
        assert any(n.endswith("self_attn.q_proj") for n in adapted)
        assert any(".multi_modal_projector." in n for n in adapted) == projector
        assert not any(p.requires_grad for n, p in model.named_parameters()
                       if "vision_tower" in n)


def test_freezing_keeps_the_vision_tower_or_the_language_model(demo_assets):
    from tui_tune.train.adapters import family_for

    for name, frozen in (("freeze_vision_tower", ".vision_tower."),
                         ("freeze_language_model", ".language_model.")):
        exp, task, _, model = loaded(demo_assets, f"architecture.{name}=true")
        model = family_for("full").apply(model, exp, task)
        grads = {n: p.requires_grad for n, p in model.named_parameters()}
        assert not any(g for n, g in grads.items() if frozen in n)
        assert all(g for n, g in grads.items() if frozen not in n and not (
            name == "freeze_language_model" and n.startswith("lm_head")))
        assert any(g for n, g in grads.items() if ".multi_modal_projector." in n)


def test_qlora_quantizes_the_language_model_only_and_trains(demo_assets):
    """int4: the language model's linear layers are 4-bit with LoRA on them; the vision tower,
    projector and head stay float; a step's loss has gradients for the adapters."""
    import bitsandbytes as bnb

    from tui_tune.train.adapters import family_for

    exp, task, tokenizer, model = loaded(
        demo_assets, 'adapter.method="qlora"', 'architecture.backbone_dtype="int4"',
        'quantization.compute_dtype="float32"')
    four_bit = {n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert four_bit and all(".language_model." in n for n in four_bit)
    assert any(n.endswith("mlp.down_proj") for n in four_bit)
    model = family_for("qlora").apply(model, exp, task)
    batch = task.train_collator(exp, tokenizer)(task.load_data(exp, tokenizer, 0).train[:4])
    task.loss(model, batch, exp).backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None for g in grads)


# --- one trained run ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_run_dir, demo_assets):
    """The demo preset for 40 steps (evaluations at 0 and 40) with a test file whose images
    are relative to its own folder."""
    root = tmp_path_factory.mktemp("vision")
    shapes = demo_assets / "data" / "shapes"
    test_file = root / "test.jsonl"
    test_file.write_text("".join(
        json.dumps({"prompt": QUESTION,
                    "image": os.path.relpath(shapes / f"{n:05d}.png", root)}) + "\n"
        for n in (3, 4, 5)))
    run_dir = make_run_dir(root / "run", [
        *demo_sets(demo_assets), "training.max_steps=40", "training.eval_every_steps=40",
        f'dataset.test_file="{test_file}"'], preset=PRESET)
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def final_generate(run_dir, prompts: list[str], images: list[str], model=None) -> list[str]:
    """Greedy answers from final/ through the Auto classes alone (or `model` with final/'s
    processor), left-padded as evaluation, with the preset's prediction settings."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(run_dir / "final", use_fast=False)
    if model is None:
        model = AutoModelForImageTextToText.from_pretrained(run_dir / "final").eval()
    texts = [processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
        add_generation_prompt=True, tokenize=False) for p in prompts]
    batch = processor(text=texts, images=[Image.open(i).convert("RGB") for i in images],
                      padding=True, padding_side="left", add_special_tokens=False,
                      return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=10, min_new_tokens=1, do_sample=False)
    width = batch["input_ids"].shape[1]
    return [t.strip() for t in processor.batch_decode(out[:, width:], skip_special_tokens=True)]


@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_a_run_learns_and_its_samples_name_their_images(trained):
    evals = read_events(trained, "eval")
    assert [e["step"] for e in evals] == [0, 40]
    assert all(e["metric"] == "exact_match" for e in evals)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] / 3
    assert evals[-1]["exact_total"] == 60 and evals[0]["exact_count"] == 0
    assert evals[-1]["perplexity"] < evals[0]["perplexity"]
    samples = [s for s in read_events(trained, "sample") if s["step"] == 40]
    assert len(samples) == 4
    for sample in samples:
        [image] = sample["images"]
        assert image.startswith("/") and image.endswith(".png")
        assert sample["prompt"] in (QUESTION, "What shape is it?") and sample["reference"]


@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_final_loads_with_the_auto_classes_and_generates_the_last_samples(trained):
    assert {"processor_config.json", "model.safetensors", "chat_template.jinja"} <= {
        p.name for p in (trained / "final").iterdir()}
    samples = [s for s in read_events(trained, "sample") if s["step"] == 40]
    made = final_generate(trained, [s["prompt"] for s in samples],
                          [s["images"][0] for s in samples])
    assert made == [s["generation"] for s in samples]


@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_the_worker_loads_final_weights_saved_under_their_legacy_names(trained):
    """save_pretrained writes LLaVA's language model as language_model.model.* (its legacy
    names); the full family's load (predict, checkpoints, pretrained_weights) maps them back
    to the model's own names, so the rebuilt model answers as the last evaluation did."""
    import torch

    from tui_tune.train.model import load_tokenizer
    from tui_tune.train.predict import trained_model
    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks import task_for

    exp = read_experiment(trained)
    task, tokenizer = task_for(exp), load_tokenizer(exp)
    model = trained_model(exp, task, tokenizer, None, trained / "final", torch.device("cpu"))
    samples = [s for s in read_events(trained, "sample") if s["step"] == 40]
    made = final_generate(trained, [s["prompt"] for s in samples],
                          [s["images"][0] for s in samples], model)
    assert made == [s["generation"] for s in samples]


@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_predictions_are_the_final_models_answers(trained):
    with open(trained / "predictions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3  # the image cells as absolute paths, read relative to the file
    assert all(os.path.isabs(r["image"]) and r["image"].endswith(f"/shapes/{n:05d}.png")
               for r, n in zip(rows, (3, 4, 5)))
    assert [r["prediction"] for r in rows] == final_generate(
        trained, [r["prompt"] for r in rows], [r["image"] for r in rows])


@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_a_missing_image_stops_the_worker_naming_row_and_path(tmp_path, make_run_dir,
                                                             demo_assets):
    rows = [json.loads(line) for line in
            (demo_assets / "data" / "shapes.jsonl").read_text().splitlines()[:40]]
    rows = [{**r, "image": str(demo_assets / "data" / r["image"])} for r in rows]
    rows[6]["image"] = "shapes/gone.png"  # relative to the data file's folder
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dir = make_run_dir(tmp_path / "run", [*demo_sets(demo_assets),
                                              f'dataset.train_file="{data}"'], preset=PRESET)
    result = run_worker(run_dir)
    assert result.returncode != 0
    assert (f"row 7, column 'image': shapes/gone.png is not found (looked for "
            f"{tmp_path}/shapes/gone.png)") in result.stderr
    assert "dataset.image_column" in result.stderr


# --- stop and resume, LoRA on the language model and the projector ------------------------------

RESUME = ['adapter.method="lora"', "adapter.dropout=0.1", "adapter.lora_projector=true",
          "training.max_steps=12", "training.eval_every_steps=6", "logging.log_every_steps=1",
          "training.evaluate_before_training=false", "dataset.validation_size=0.01",
          'prediction.metric="bleu"']


@pytest.fixture(scope="module")
def pair(tmp_path_factory, make_run_dir, demo_assets):
    return whole_and_resumed(make_run_dir, tmp_path_factory.mktemp("vision-resume"),
                             [*demo_sets(demo_assets), *RESUME], PRESET, 4)


@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_resume_matches_the_uninterrupted_losses_and_metrics(pair):
    whole, resumed = pair
    assert read_events(resumed, "start")[1]["resumed_from_step"] >= 4
    assert sorted(losses(resumed)) == list(range(1, 13)) == sorted(losses(whole))
    for step, loss in losses(whole).items():
        assert losses(resumed)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    last_whole, last_resumed = read_events(whole, "eval")[-1], read_events(resumed, "eval")[-1]
    for name in ("val_loss", "perplexity", "bleu"):
        assert last_resumed[name] == pytest.approx(last_whole[name], rel=1e-5), name
    assert {"adapter_model.safetensors", "processor_config.json"} <= {
        p.name for p in (resumed / "final").iterdir()}


# --- two CPU ranks ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
@pytest.mark.skipif(__import__("torch").cuda.device_count() == 1,
                    reason="one GPU: two nccl ranks cannot share it")
def test_two_ranks_score_every_validation_row(tmp_path, make_run_dir, demo_assets):
    """Full fine-tuning on two gloo ranks (the vision tower's last norm gets no gradient: DDP
    must be told), an odd number of validation rows split between them: the BLEU gathered on
    rank 0 is that of the final model's answers to every row."""
    import torch
    from test_train_ddp import launch

    from tui_tune.train import metrics
    from tui_tune.train.model import load_tokenizer
    from tui_tune.train.predict import trained_model
    from tui_tune.train.setup import read_experiment
    from tui_tune.train.tasks import task_for

    run_dir = make_run_dir(tmp_path / "ddp", [
        *demo_sets(demo_assets), "dataset.validation_size=0.0125", "training.max_steps=6", "training.eval_every_steps=6",
        "training.evaluate_before_training=false", 'prediction.metric="bleu"'], preset=PRESET)
    output = launch(run_dir).communicate(timeout=400)[0].decode(errors="replace")
    assert read_events(run_dir, "end")[-1]["status"] == "completed", output[-3000:]
    assert read_events(run_dir, "start")[0]["world_size"] == 2
    exp = read_experiment(run_dir)
    task, tokenizer = task_for(exp), load_tokenizer(exp)
    val = task.load_data(exp, tokenizer, read_events(run_dir, "start")[0]["seed"]).val
    assert len(val) == 15  # one rank has one more
    model = trained_model(exp, task, tokenizer, None, run_dir / "final", torch.device("cpu"))
    made = [""] * len(val)
    for rank in (0, 1):  # each rank's share, batched as that rank generated it
        share = val[rank::2]
        made[rank::2] = final_generate(run_dir, [e.prompt for e in share],
                                       [e.images[0] for e in share], model)
    last = read_events(run_dir, "eval")[-1]
    assert last["bleu"] == pytest.approx(metrics.bleu(made, [e.answer for e in val]), abs=1e-9)
    # the samples are the first rows' answers, made by both ranks (rows 0, 2 and 1, 3)
    samples = [s for s in read_events(run_dir, "sample") if s["step"] == 6]
    assert [s["generation"] for s in samples] == made[:4]
    assert [s["reference"] for s in samples] == [e.answer for e in val[:4]]


# --- a sweep over an image setting -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.xdist_group("train-multimodal")
def test_a_sweep_over_image_resize_runs_each_member(tmp_path, demo_assets):
    """Two members (image_resize processor / pad), queued, checked (images included) and run
    one after another by the detached runner; each completes with its own value."""
    from test_runs_process import wait_for

    from tui_tune.config import expand
    from tui_tune.config.toml_io import read_toml
    from tui_tune.runs.preflight import members_problems
    from tui_tune.runs.status import run_status
    from tui_tune.runs.store import RunStore
    from tui_tune.runs.sweep import create_sweep, list_sweeps, start_runner

    experiment = resolve(PRESET, [
        *demo_sets(demo_assets), "training.max_steps=3", "training.eval_every_steps=1000",
        "training.evaluate_before_training=false", "dataset.data_sample=0.1",
        'sweep.tokenizer.image_resize=["processor", "pad"]']).experiment
    assert members_problems(list(expand(experiment)), cuda_devices=0) == []
    store = RunStore(tmp_path / "runs")
    sweep_dir = create_sweep(store, experiment, PRESET)
    runs = json.loads((sweep_dir / "sweep.json").read_text())["runs"]
    start_runner(sweep_dir)
    wait_for(lambda: list_sweeps(store)[0].done, 300, "the sweep to finish")
    assert [run_status(store.root / r) for r in runs] == ["completed"] * 2, \
        (sweep_dir / "runner.log").read_text()
    assert [read_toml(store.root / r / "config.toml")["tokenizer"]["image_resize"]
            for r in runs] == ["processor", "pad"]
