"""extractive_qa end to end: windows put answers back exactly, the loss is transformers' own on
run_qa.py's labels, the tiny encoder learns the demo questions through the real worker, final/
loads with AutoModelForQuestionAnswering and gives the logged exact match and F1 with
run_qa.py's post-processing, the test file gets answers, and a LoRA run resumes exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import completed_run as completed
from conftest import read_events, run_worker
from test_train_resume import losses, stop_at_step

from tui_tune.config.presets import resolve
from tui_tune.events import contract_problems
from tui_tune.train.qa_metrics import squad_scores
from tui_tune.train.setup import read_experiment

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-qa")]

QUICK = ["training.max_steps=200", "training.eval_every_steps=100"]
# LoRA with dropout: the resumed losses match only if the RNG state is restored too
LORA = ['adapter.method="lora"', "adapter.dropout=0.1", "training.max_steps=16",
        "training.eval_every_steps=8", "logging.log_every_steps=1",
        "training.evaluate_before_training=false"]


def qa_run_dir(make_run_dir, demo: Path, run_dir: Path, overrides=()) -> Path:
    return make_run_dir(run_dir, [f'general.backbone="{demo / "encoder"}"',
                                  f'dataset.train_file="{demo / "data" / "qa.jsonl"}"',
                                  *overrides], preset="demo-qa")


def demo_experiment(demo: Path, *overrides: str):
    return resolve("demo-qa", [f'general.backbone="{demo / "encoder"}"',
                               f'dataset.train_file="{demo / "data" / "qa.jsonl"}"',
                               *overrides]).experiment


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_run_dir, demo_assets):
    """demo-qa, shortened, with the first 40 rows as a test file."""
    root = tmp_path_factory.mktemp("runs")
    rows = (demo_assets / "data" / "qa.jsonl").read_text().splitlines()[:40]
    with open(root / "test.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["question", "context"])
        writer.writerows([json.loads(r)["question"], json.loads(r)["context"]] for r in rows)
    return completed(qa_run_dir(make_run_dir, demo_assets, root / "full",
                                [*QUICK, f'dataset.test_file="{root / "test.csv"}"']))


@pytest.fixture(scope="module")
def lora_whole(tmp_path_factory, make_run_dir, demo_assets):
    return completed(qa_run_dir(make_run_dir, demo_assets,
                                tmp_path_factory.mktemp("runs") / "lora", LORA))


def reference_features(tokenizer, rows: list[dict], max_length: int, stride: int) -> list[dict]:
    """run_qa.py's prepare_train_features: windows labelled with the answer's tokens, or the
    [CLS] position when the window does not hold it whole."""
    encoded = tokenizer([r["question"].lstrip() for r in rows], [r["context"] for r in rows],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    features = []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        ids = encoded["input_ids"][i]
        cls = ids.index(tokenizer.cls_token_id)
        sequence = encoded.sequence_ids(i)
        row = rows[encoded["overflow_to_sample_mapping"][i]]
        start = end = cls
        if row["answer"]:
            start_char = row["answer_start"]
            end_char = start_char + len(row["answer"])
            first = 0
            while sequence[first] != 1:
                first += 1
            last = len(ids) - 1
            while sequence[last] != 1:
                last -= 1
            if offsets[first][0] <= start_char and offsets[last][1] >= end_char:
                while first < len(offsets) and offsets[first][0] <= start_char:
                    first += 1
                while offsets[last][1] >= end_char:
                    last -= 1
                start, end = first - 1, last + 1
        features.append({"input_ids": ids, "token_type_ids": encoded["token_type_ids"][i],
                         "attention_mask": encoded["attention_mask"][i],
                         "start_positions": start, "end_positions": end})
    return features


@torch.no_grad()
def reference_answers(model, tokenizer, rows: list[dict], exp, unanswerable: bool) -> list[str]:
    """run_qa.py's postprocess_qa_predictions, every start and end considered (n_best = all):
    the best span of at most max_answer_length tokens over a question's windows; no answer
    when the lowest [CLS] score of its windows beats it."""
    model.eval()
    answers = []
    for row in rows:
        encoded = tokenizer(row["question"].lstrip(), row["context"], truncation="only_second",
                            max_length=exp.tokenizer.max_length, stride=exp.dataset.doc_stride,
                            return_overflowing_tokens=True, return_offsets_mapping=True,
                            padding=True, return_tensors="pt")
        out = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                    token_type_ids=encoded["token_type_ids"])
        best, text, null = float("-inf"), "", float("inf")
        for i in range(len(encoded["input_ids"])):
            starts, ends = out.start_logits[i].tolist(), out.end_logits[i].tolist()
            offsets, sequence = encoded["offset_mapping"][i].tolist(), encoded.sequence_ids(i)
            null = min(null, starts[0] + ends[0])
            for s in range(len(starts)):
                for e in range(s, min(len(ends), s + exp.prediction.max_answer_length)):
                    if sequence[s] == 1 and sequence[e] == 1 and starts[s] + ends[e] > best:
                        best = starts[s] + ends[e]
                        text = row["context"][offsets[s][0]:offsets[e][1]]
        answers.append("" if unanswerable and null > best else text)
    return answers


def validation_rows(run_dir: Path) -> list[dict]:
    from tui_tune.train.data import read_rows, split_rows

    exp = read_experiment(run_dir)
    seed = json.loads((run_dir / "run.json").read_text())["seed"]
    return split_rows(read_rows(exp.dataset.train_file, "dataset.train_file"), exp.dataset,
                      seed)[1]


def test_windows_put_every_answer_back_exactly(demo_assets):
    """Long contexts cut into overlapping windows: each answer's labelled tokens give back its
    characters through the offsets, in at least one window; windows without it point at
    [CLS]."""
    from transformers import AutoTokenizer

    from tui_tune.train.tasks.extractive_qa import ExtractiveQA

    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "encoder")
    exp = demo_experiment(demo_assets, "tokenizer.max_length=40", "dataset.doc_stride=12",
                          "dataset.validation_size=0.5")
    data = ExtractiveQA().load_data(exp, tokenizer, seed=0)
    windows = data.train + data.val
    assert len(windows) > 2 * 2000  # most contexts need several windows at 40 tokens
    found: dict[int, set[str]] = {}
    for w in windows:
        assert len(w) <= 40 and w.token_type_ids is not None
        if w.start == w.cls:
            assert w.end == w.cls
            continue
        text = w.row.context[w.offsets[w.start][0]:w.offsets[w.end][1]]
        assert text == w.row.answer and w.row.span == (w.offsets[w.start][0],
                                                       w.offsets[w.end][1])
        found.setdefault(id(w.row), set()).add(text)
    answered = {id(w.row) for w in windows if w.row.answer}
    assert found.keys() == answered  # every answer is whole in some window
    assert data.unanswerable and any(w.row.span is None for w in windows)


def test_our_loss_is_the_models_own_on_run_qa_labels(demo_assets):
    """Our rows -> windows -> batch give the loss the model computes from run_qa.py's features
    (the same windows and start/end positions, padded by DataCollatorWithPadding)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding

    from tui_tune.train.tasks.extractive_qa import ExtractiveQA

    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "encoder")
    exp = demo_experiment(demo_assets, "dataset.validation_size=0.5")
    task = ExtractiveQA()
    windows = task.load_data(exp, tokenizer, seed=0).train
    rows = []  # the rows of the first windows' questions, in order, as the file holds them
    for w in windows:
        if not rows or rows[-1]["question"] != w.row.question \
                or rows[-1]["context"] != w.row.context:
            rows.append({"question": w.row.question, "context": w.row.context,
                         "answer": w.row.answer, "answer_start": w.row.span[0]
                         if w.row.span else -1})
        if len(rows) == 12:
            break
    features = reference_features(tokenizer, rows, exp.tokenizer.max_length,
                                  exp.dataset.doc_stride)
    ours = windows[:len(features)]
    assert [f["start_positions"] for f in features] == [w.start for w in ours]
    assert [f["end_positions"] for f in features] == [w.end for w in ours]
    assert len(features) > len(rows)  # some of them in several windows
    torch.manual_seed(0)
    model = AutoModelForQuestionAnswering.from_pretrained(demo_assets / "encoder").eval()
    with torch.no_grad():
        theirs = model(**DataCollatorWithPadding(tokenizer)(features)).loss
        mine = task.loss(model, task.train_collator(exp, tokenizer)(ours), exp)
    assert float(mine) == pytest.approx(float(theirs), rel=1e-6)


def test_the_encoder_learns_the_demo_questions(trained):
    evals = read_events(trained, "eval")
    assert [e["step"] for e in evals] == [0, 100, 200]
    assert all(e["metric"] == "f1" and e["metric_value"] == e["f1"] for e in evals)
    assert evals[0]["f1"] < 0.15 and evals[-1]["f1"] > evals[0]["f1"] + 0.15, evals
    assert evals[-1]["exact_match"] <= evals[-1]["f1"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] / 2
    samples = [s for s in read_events(trained, "sample") if s["step"] == 200]
    assert len(samples) == 4
    for s in samples:
        assert s["truth"] == (s["context"][slice(*s["truth_span"])] if s["truth_span"] else "")
        assert s["predicted"] == (s["context"][slice(*s["span"])] if s["span"] else "")
        assert s["generation"] == (s["predicted"] or "(no answer)")
    problems = [p for e in read_events(trained) for p in contract_problems(e)]
    assert not problems, problems


def test_final_loads_as_a_qa_model_and_gives_the_logged_scores(trained):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(trained / "final")
    tokenizer = AutoTokenizer.from_pretrained(trained / "final")
    exp = read_experiment(trained)
    rows = validation_rows(trained)
    predicted = reference_answers(model, tokenizer, rows, exp, unanswerable=True)
    expected = squad_scores([[r["answer"]] for r in rows], predicted)
    logged = read_events(trained, "eval")[-1]
    assert logged["exact_match"] == pytest.approx(expected["exact_match"], abs=1e-9)
    assert logged["f1"] == pytest.approx(expected["f1"], abs=1e-9)
    # the test file's answers are final/'s, each a piece of its context at prediction_start
    with open(trained / "predictions.csv", newline="", encoding="utf-8") as file:
        written = list(csv.DictReader(file))
    tested = [{"question": r["question"], "context": r["context"]} for r in written]
    assert [r["prediction"] for r in written] == reference_answers(
        model, tokenizer, tested, exp, unanswerable=True)
    for r in written:
        if r["prediction"]:
            start = int(r["prediction_start"])
            assert r["context"][start:start + len(r["prediction"])] == r["prediction"]


def test_a_lora_run_stopped_by_sigterm_resumes_to_the_same_losses(tmp_path, make_run_dir,
                                                                  demo_assets, lora_whole):
    run_dir = stop_at_step(qa_run_dir(make_run_dir, demo_assets, tmp_path / "stopped", LORA), 6)
    assert read_events(run_dir, "end")[-1]["status"] == "stopped"
    result = run_worker(run_dir, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_events(run_dir, "start")[1]["resumed_from_step"] >= 6
    assert read_events(run_dir, "end")[-1]["status"] == "completed"
    assert sorted(losses(run_dir)) == list(range(1, 17)) == sorted(losses(lora_whole))
    for step, loss in losses(lora_whole).items():
        assert losses(run_dir)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    last, whole = read_events(run_dir, "eval")[-1], read_events(lora_whole, "eval")[-1]
    for name in ("val_loss", "f1", "exact_match"):
        assert last[name] == pytest.approx(whole[name], rel=1e-5, abs=1e-9), name
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()


def test_a_question_that_leaves_no_room_for_the_context_is_a_one_line_error(
        tmp_path, make_run_dir, demo_assets):
    run_dir = qa_run_dir(make_run_dir, demo_assets, tmp_path / "narrow",
                         ["tokenizer.max_length=16", "dataset.doc_stride=8"])
    result = run_worker(run_dir)
    assert result.returncode != 0
    end = read_events(run_dir, "end")[-1]
    assert end["error_type"] == "UserError" and end["setting"] == "dataset.doc_stride"
    assert "leaves" in end["message"] and "lower doc_stride or raise max_length" in end["message"]
