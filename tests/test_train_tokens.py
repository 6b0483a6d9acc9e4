"""token_classification end to end: the tiny encoder learns the demo's NER tags through the real
worker, the loss is transformers' own on the reference alignment, the scores are seqeval's on
word-aligned tags, final/ loads with AutoModelForTokenClassification (PeftModel for LoRA) and
gives the logged F1, LoRA runs resume exactly, and the Llama demo model tags too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import completed_run as completed
from conftest import read_events, run_worker
from test_train_resume import stop_at_step
from worker_env import worker_env

from tui_tune.events import contract_problems
from tui_tune.train.setup import read_experiment

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-tokens")]

QUICK = ["training.max_steps=90", "training.eval_every_steps=45",
         "training.evaluate_before_training=true", "logging.log_every_steps=1"]
# LoRA with dropout: the resumed losses match only if the RNG state is restored too
LORA = ['adapter.method="lora"', "adapter.dropout=0.1", "training.max_steps=24",
        "training.eval_every_steps=12", "logging.log_every_steps=1", "training.lr=0.01"]


def tokens_run_dir(make_run_dir, demo: Path, run_dir: Path, overrides=()) -> Path:
    return make_run_dir(run_dir, [f'general.backbone="{demo / "encoder"}"',
                                  f'dataset.train_file="{demo / "data" / "ner.jsonl"}"',
                                  *overrides], preset="demo-tokens")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_run_dir, demo_assets):
    return completed(tokens_run_dir(make_run_dir, demo_assets,
                                    tmp_path_factory.mktemp("runs") / "full", QUICK))


@pytest.fixture(scope="module")
def lora_whole(tmp_path_factory, make_run_dir, demo_assets):
    return completed(tokens_run_dir(make_run_dir, demo_assets,
                                    tmp_path_factory.mktemp("runs") / "lora", LORA))


def validation_rows(run_dir: Path) -> tuple[list[list[str]], list[list[str]]]:
    """The run's validation words and tags, split as the worker splits them."""
    from tui_tune.runs.tag_rows import words_and_tags
    from tui_tune.train.data import read_rows, split_rows

    exp = read_experiment(run_dir)
    rows = read_rows(exp.dataset.train_file, "dataset.train_file")
    pairs = [words_and_tags(r, exp.dataset) for r in split_rows(rows, exp.dataset, 42)[1]]
    return [w for w, _ in pairs], [t for _, t in pairs]


@torch.no_grad()
def reference_tags(model, tokenizer, sentences: list[list[str]]) -> list[list[str]]:
    """Each word's tag read at its first sub-token, as transformers' NER examples do."""
    model.eval()
    out = []
    for words in sentences:
        encoded = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        best = model(**encoded).logits[0].argmax(-1).tolist()
        first = {}
        for position, word in enumerate(encoded.word_ids()):
            if word is not None:
                first.setdefault(word, position)
        out.append([model.config.id2label[best[first[w]]] for w in range(len(words))])
    return out


def seqeval_scores(truth, predicted) -> dict[str, float]:
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {"precision": precision_score(truth, predicted), "recall": recall_score(truth, predicted),
            "f1": f1_score(truth, predicted), "accuracy": accuracy_score(truth, predicted)}


def test_the_encoder_learns_the_demo_tags(trained):
    evals = read_events(trained, "eval")
    assert [e["step"] for e in evals] == [0, 45, 90]
    assert all(e["metric"] == "f1" and e["metric_value"] == e["f1"] for e in evals)
    assert evals[0]["f1"] < 0.2 and evals[-1]["f1"] > 0.8, evals
    assert evals[-1]["accuracy"] > 0.9 and evals[-1]["val_loss"] < evals[0]["val_loss"] / 5
    samples = [s for s in read_events(trained, "sample") if s["step"] == 90]
    assert len(samples) == 4
    first = samples[0]
    assert first["prompt"] == " ".join(first["words"])
    assert first["generation"] == " ".join(f"{w}/{t}" for w, t in zip(first["words"],
                                                                       first["predicted"]))
    assert first["reference"] == " ".join(f"{w}/{t}" for w, t in zip(first["words"],
                                                                      first["truth"]))
    assert read_events(trained, "end")[-1]["status"] == "completed"
    problems = [p for e in read_events(trained) for p in contract_problems(e)]
    assert not problems, problems


def test_final_loads_as_a_token_classifier_and_gives_the_logged_scores(trained):
    """Also the alignment end to end: seqeval on tags read the reference way equals the
    logged precision, recall, F1 and accuracy."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(trained / "final")
    tokenizer = AutoTokenizer.from_pretrained(trained / "final")
    config = json.loads((trained / "final" / "config.json").read_text())
    assert config["id2label"] == {"0": "B-LOC", "1": "B-ORG", "2": "B-PER", "3": "I-LOC",
                                  "4": "I-ORG", "5": "I-PER", "6": "O"}
    words, truth = validation_rows(trained)
    logged = read_events(trained, "eval")[-1]
    expected = seqeval_scores(truth, reference_tags(model, tokenizer, words))
    for name, value in expected.items():
        assert logged[name] == pytest.approx(value, abs=1e-9), name


def test_lora_final_loads_with_peft_and_gives_the_logged_f1(lora_whole):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    exp = read_experiment(lora_whole)
    final = lora_whole / "final"
    base = AutoModelForTokenClassification.from_pretrained(
        exp.general.backbone, config=AutoConfig.from_pretrained(final))
    model = PeftModel.from_pretrained(base, final)
    words, truth = validation_rows(lora_whole)
    predicted = reference_tags(model, AutoTokenizer.from_pretrained(final), words)
    assert read_events(lora_whole, "eval")[-1]["f1"] == pytest.approx(
        seqeval_scores(truth, predicted)["f1"], abs=1e-9)


def test_our_loss_is_transformers_loss_on_its_own_alignment(demo_assets):
    """Our rows -> examples -> batch give the loss transformers' token classification recipe
    (tokenize_and_align_labels + DataCollatorForTokenClassification) gives, either way of
    labelling sub-tokens; and a word split in pieces is labelled on the pieces asked for."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
    )

    from tui_tune.config.presets import resolve
    from tui_tune.train.tasks.token_classification import TokenClassification

    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "encoder")
    for all_subtokens in (False, True):
        exp = resolve("demo-tokens", [f'dataset.train_file="{demo_assets / "data/ner.jsonl"}"',
                                      "dataset.validation_size=0.5",
                                      f"dataset.label_all_subtokens={str(all_subtokens).lower()}"
                                      ]).experiment
        task = TokenClassification()
        data = task.load_data(exp, tokenizer, seed=0)
        examples = data.train[:16]
        torch.manual_seed(0)
        model = AutoModelForTokenClassification.from_pretrained(
            demo_assets / "encoder", **task.model_kwargs(exp, data)).eval()
        features = []
        for example in examples:
            encoded = tokenizer(example.words, is_split_into_words=True)
            labels, previous = [], None
            for word in encoded.word_ids():
                labels.append(example.tags[word] if word is not None
                              and (word != previous or all_subtokens) else -100)
                previous = word
            features.append({**encoded, "labels": labels})
        reference = DataCollatorForTokenClassification(tokenizer)(features)
        with torch.no_grad():
            theirs = model(**reference).loss
            ours = task.loss(model, task.train_collator(exp, tokenizer)(examples), exp)
        assert ours == pytest.approx(float(theirs), rel=1e-6)
        split = next(e for e in examples if len(e.input_ids) > len(e.words) + 2)
        pieces = sum(1 for label in split.labels if label != -100)
        assert pieces == (len(split.input_ids) - 2 if all_subtokens else len(split.words))


def test_a_lora_run_stopped_by_sigterm_resumes_to_the_same_losses(tmp_path, make_run_dir,
                                                                  demo_assets, lora_whole):
    run_dir = tokens_run_dir(make_run_dir, demo_assets, tmp_path / "stopped", LORA)
    stop_at_step(run_dir, 8)
    assert read_events(run_dir, "end")[-1]["status"] == "stopped"
    completed_run = run_worker(run_dir, "--resume")
    assert completed_run.returncode == 0, completed_run.stderr[-3000:]
    assert read_events(run_dir, "end")[-1]["status"] == "completed"
    resumed = {e["step"]: e["loss"] for e in read_events(run_dir, "step")}
    whole = {e["step"]: e["loss"] for e in read_events(lora_whole, "step")}
    assert sorted(resumed) == list(range(1, 25)) == sorted(whole)
    for step, loss in whole.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    assert read_events(run_dir, "eval")[-1]["f1"] == pytest.approx(
        read_events(lora_whole, "eval")[-1]["f1"], abs=1e-9)


def test_the_llama_demo_model_tags_text_columns(tmp_path, make_run_dir, demo_assets):
    """LlamaForTokenClassification (its head is `score`) from a csv whose words and tags are
    texts split on spaces."""
    import csv

    rows = [json.loads(line) for line in
            (demo_assets / "data" / "ner.jsonl").read_text().splitlines()[:400]]
    with open(tmp_path / "ner.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["sentence", "labels"])
        writer.writerows([" ".join(r["tokens"]), " ".join(r["tags"])] for r in rows)
    run_dir = make_run_dir(tmp_path / "llama", [
        f'general.backbone="{demo_assets / "model"}"', f'dataset.train_file="{tmp_path}/ner.csv"',
        'dataset.words_column="sentence"', 'dataset.tags_column="labels"',
        "training.max_steps=12", "training.eval_every_steps=12", "training.lr=0.001",
        'adapter.method="last_layer"', "logging.log_every_steps=1"], preset="demo-tokens")
    completed(run_dir)
    config = json.loads((run_dir / "final" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForTokenClassification"]
    assert config["label2id"]["O"] == 6
    losses = [e["loss"] for e in read_events(run_dir, "step")]
    assert losses[-1] < losses[0]
    evals = read_events(run_dir, "eval")
    assert evals and 0 <= evals[-1]["f1"] <= 1 and evals[-1]["accuracy"] > 0.5
    assert read_events(run_dir, "sample")[0]["generation"].count("/") == len(
        read_events(run_dir, "sample")[0]["words"])


@pytest.mark.skipif(torch.cuda.device_count() == 1,
                    reason="one GPU: two nccl ranks cannot share it; the gloo CPU run covers "
                    "two ranks")
def test_two_ranks_score_every_validation_row(tmp_path, make_run_dir, demo_assets):
    """Each rank predicts half the rows: the logged scores are those of the whole set, as
    final/ gives them in one process."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    run_dir = tokens_run_dir(make_run_dir, demo_assets, tmp_path / "ddp", [
        "training.max_steps=20", "training.eval_every_steps=20", "training.lr=0.005"])
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    result = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         "-m", "tui_tune.train", str(run_dir)],
        env=worker_env(), capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_events(run_dir, "start")[0]["world_size"] == 2
    evals = read_events(run_dir, "eval")
    assert len(evals) == 1 and 0.1 < evals[0]["f1"] < 1.0
    model = AutoModelForTokenClassification.from_pretrained(run_dir / "final")
    words, truth = validation_rows(run_dir)
    expected = seqeval_scores(truth, reference_tags(
        model, AutoTokenizer.from_pretrained(run_dir / "final"), words))
    for name, value in expected.items():
        assert evals[0][name] == pytest.approx(value, abs=1e-9), name
