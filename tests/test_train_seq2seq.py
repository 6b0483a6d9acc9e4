"""The seq2seq problem type on the demo's tiny T5 (numbers in digits -> words): its loss is
transformers' own, its scores are rouge-score's and sacrebleu's, a run learns, final/ loads with
AutoModelForSeq2SeqLM and gives the logged metric again, predictions are the model's outputs,
stop/resume replays the same run (LoRA on both stacks), and bad rows are named."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import read_events, run_worker
from test_train_resume import losses, whole_and_resumed

from tui_tune.config import validate_experiment
from tui_tune.config.presets import resolve
from tui_tune.config.toml_io import read_toml
from tui_tune.runs.datafiles import DataFileError, check_rows
from tui_tune.runs.preflight import data_file_problems

PRESET = "demo-seq2seq"


def demo_sets(demo) -> list[str]:
    return [f'general.backbone="{demo / "seq2seq"}"',
            f'dataset.train_file="{demo / "data" / "numbers.jsonl"}"']


def demo_experiment(demo, *sets: str):
    return resolve(PRESET, [*demo_sets(demo), *sets]).experiment


# --- in process: the loss and the scores against the libraries ------------------------------

def test_the_loss_is_transformers_labels_loss_on_the_same_batch(demo_assets):
    """Our examples and collator give the batch that transformers' tokenizer(text_target=)
    and DataCollatorForSeq2Seq give (task prefix, </s>, -100 padding), and the loss is the
    model's labels= loss on it; sample_avg_ce averages each row first."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq

    from tui_tune.train.tasks import task_named

    exp = demo_experiment(demo_assets, "dataset.validation_size=0.01")
    tokenizer = AutoTokenizer.from_pretrained(exp.general.backbone)
    model = AutoModelForSeq2SeqLM.from_pretrained(exp.general.backbone).eval()
    task = task_named("seq2seq")
    examples = task.load_data(exp, tokenizer, 0).train[:6]
    ours = task.train_collator(exp, tokenizer)(examples)

    sources = [e.source for e in examples]
    assert all(s.startswith("spell: ") and s[len("spell: "):].isdigit() for s in sources)
    features = tokenizer(sources, text_target=[e.target for e in examples])
    reference = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)(
        [{k: features[k][i] for k in ("input_ids", "attention_mask", "labels")}
         for i in range(len(examples))])
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(ours[key], reference[key]), key
    assert (ours["labels"] == -100).any() and ours["input_ids"][0, 0] != tokenizer.pad_token_id
    assert tokenizer.decode(ours["input_ids"][0], skip_special_tokens=True).startswith("spell:")

    with torch.no_grad():
        expected = model(**reference).loss
        assert task.loss(model, ours, exp) == pytest.approx(float(expected), rel=1e-6)
        logits = model(**reference).logits
        rows = [torch.nn.functional.cross_entropy(logits[i], reference["labels"][i],
                                                  ignore_index=-100) for i in range(6)]
        sample_exp = exp.model_copy(update={"training": exp.training.model_copy(
            update={"loss": "sample_avg_ce"})})
        assert task.loss(model, ours, sample_exp) == pytest.approx(
            float(torch.stack(rows).mean()), rel=1e-6)


def test_rouge_bleu_and_chrf_are_the_libraries_scores():
    import sacrebleu
    from rouge_score import rouge_scorer

    from tui_tune.train.metrics import text_scores

    generated = ["two hundred sixty", "three hundred seventy two", "the cats were running",
                 ""]
    references = ["two hundred sixty", "two hundred thirty seven", "a cat runs fast",
                  "nine"]
    scores = text_scores(generated, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    pairs = [scorer.score(r, g) for g, r in zip(generated, references)]
    for name in ("rouge1", "rouge2", "rougeL"):
        assert scores[name] == pytest.approx(100 * sum(p[name].fmeasure for p in pairs) / 4)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(generated, [references]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(generated, [references]).score)
    assert 0 < scores["rouge1"] < 100 and scores["rouge1"] != scores["rouge2"]


# --- bad data: the column and the row named ----------------------------------------------------

@pytest.mark.parametrize(("rows", "setting", "words"), [
    ([{"prompt": "1", "answer": "one"}, {"prompt": "2", "answer": "  "}],
     "dataset.answer_column", ["row 2", "empty target", "'answer'"]),
    ([{"prompt": "1", "answer": "one"}, {"prompt": "", "answer": "two"}],
     "dataset.prompt_columns", ["row 2", "no source text", "'prompt'"]),
    ([{"text": "1", "answer": "one"}], "dataset.prompt_columns", ["'prompt'", "not in the file"]),
    ([{"prompt": "1", "answer": "one"}, {"prompt": "3"}],
     "dataset.answer_column", ["row 2", "'answer'"]),
])
def test_bad_rows_are_named_by_column_and_row(demo_assets, rows, setting, words):
    ds = demo_experiment(demo_assets).dataset
    with pytest.raises(DataFileError) as error:
        check_rows(rows, ds, "seq2seq")
    assert error.value.setting == setting
    for word in words:
        assert word in error.value.message


def test_the_launch_preflight_refuses_an_empty_target(tmp_path, demo_assets):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "1", "answer": "one"}\n{"prompt": "2", "answer": ""}\n')
    ds = demo_experiment(demo_assets).dataset
    problems = data_file_problems(str(path), "dataset.train_file", ds, "seq2seq")
    assert [p.key for p in problems] == ["dataset.answer_column"]
    assert "row 2 has an empty target in column 'answer'" in problems[0].message
    # a test file needs only the source
    path.write_text('{"prompt": "1"}\n')
    assert data_file_problems(str(path), "dataset.test_file", ds, "seq2seq", False) == []


# --- one trained run ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_run_dir, demo_assets):
    """The demo preset for 60 steps (evaluations at 0, 30 and 60) with a test file."""
    root = tmp_path_factory.mktemp("seq2seq")
    test_file = root / "test.jsonl"
    test_file.write_text("".join(json.dumps({"prompt": str(n)}) + "\n"
                                 for n in (7, 15, 340, 999, 62)))
    run_dir = make_run_dir(root / "run", [
        *demo_sets(demo_assets), "training.max_steps=60", "training.eval_every_steps=30",
        f'dataset.test_file="{test_file}"'], preset=PRESET)
    result = run_worker(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.slow
@pytest.mark.xdist_group("train-seq2seq")
def test_a_run_learns_and_shows_source_output_and_reference(trained):
    evals = read_events(trained, "eval")
    assert [e["step"] for e in evals] == [0, 30, 60]
    assert all(e["metric"] == "rougeL" and e["metric_value"] == e["rougeL"] for e in evals)
    assert evals[-1]["rougeL"] > evals[0]["rougeL"] + 20
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    for name in ("rouge1", "rouge2", "bleu", "chrf", "perplexity"):
        assert evals[-1][name] >= 0, name
    samples = [s for s in read_events(trained, "sample") if s["step"] == 60]
    assert len(samples) == 4
    assert all(s["prompt"].startswith("spell: ") and s["reference"] for s in samples)
    assert any(s["generation"] for s in samples)


def reference_generation(model, tokenizer, sources: list[str], size: int) -> list[str]:
    import torch

    out = []
    for start in range(0, len(sources), size):
        enc = tokenizer(sources[start:start + size], padding=True, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**enc, max_new_tokens=12, do_sample=False, num_beams=1)
        out += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("train-seq2seq")
def test_final_loads_with_auto_model_and_gives_the_logged_metrics(trained):
    """final/ with AutoModelForSeq2SeqLM and AutoTokenizer: the validation rows' loss and
    ROUGE-L computed with transformers and rouge-score alone are the last eval event's."""
    import torch
    from rouge_score import rouge_scorer
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq

    from tui_tune.train.tasks import task_named

    exp = validate_experiment(read_toml(trained / "config.toml"))
    seed = read_events(trained, "start")[0]["seed"]
    model = AutoModelForSeq2SeqLM.from_pretrained(trained / "final").eval()
    tokenizer = AutoTokenizer.from_pretrained(trained / "final")
    val = task_named("seq2seq").load_data(exp, tokenizer, seed).val
    sources, targets = [e.source for e in val], [e.target for e in val]
    last = read_events(trained, "eval")[-1]

    made = reference_generation(model, tokenizer, sources, exp.prediction.batch_size)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge_l = 100 * sum(scorer.score(t, g)["rougeL"].fmeasure
                        for g, t in zip(made, targets)) / len(val)
    assert rouge_l == pytest.approx(last["rougeL"], abs=1e-6)

    features = tokenizer(sources, text_target=targets, truncation=True, max_length=16)
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    batch = collate([{k: features[k][i] for k in ("input_ids", "attention_mask", "labels")}
                     for i in range(len(val))])
    with torch.no_grad():
        loss = model(**batch).loss
    assert float(loss) == pytest.approx(last["val_loss"], rel=1e-4)


@pytest.mark.slow
@pytest.mark.xdist_group("train-seq2seq")
def test_predictions_are_the_final_models_outputs(trained):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    with open(trained / "predictions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["prompt"] for r in rows] == ["7", "15", "340", "999", "62"]
    model = AutoModelForSeq2SeqLM.from_pretrained(trained / "final").eval()
    tokenizer = AutoTokenizer.from_pretrained(trained / "final")
    expected = reference_generation(model, tokenizer, ["spell: " + r["prompt"] for r in rows], 64)
    assert [r["prediction"] for r in rows] == expected


# --- stop and resume, LoRA on the encoder and the decoder -------------------------------------

RESUME = ['adapter.method="lora"', "adapter.dropout=0.1", "adapter.r=8", "training.max_steps=16",
          "training.eval_every_steps=8", "logging.log_every_steps=1", "training.lr=0.003",
          "training.evaluate_before_training=false", "dataset.validation_size=0.01"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, make_run_dir, demo_assets):
    return whole_and_resumed(make_run_dir, tmp_path_factory.mktemp("seq2seq-resume"),
                             [*demo_sets(demo_assets), *RESUME], PRESET, 5)


@pytest.mark.slow
@pytest.mark.xdist_group("train-seq2seq")
def test_resume_matches_the_uninterrupted_losses_and_metrics(pair):
    whole, resumed = pair
    assert read_events(resumed, "start")[1]["resumed_from_step"] >= 5
    assert sorted(losses(resumed)) == list(range(1, 17)) == sorted(losses(whole))
    for step, loss in losses(whole).items():
        assert losses(resumed)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    last_whole, last_resumed = read_events(whole, "eval")[-1], read_events(resumed, "eval")[-1]
    for name in ("val_loss", "rougeL", "bleu", "chrf"):
        assert last_resumed[name] == pytest.approx(last_whole[name], rel=1e-5), name


@pytest.mark.slow
@pytest.mark.xdist_group("train-seq2seq")
def test_lora_all_linear_adapts_both_stacks_but_not_the_head(pair):
    from safetensors import safe_open

    with safe_open(pair[0] / "final" / "adapter_model.safetensors", "pt") as weights:
        names = list(weights.keys())
    for part in ("encoder.block", "decoder.block", "EncDecAttention", "DenseReluDense"):
        assert any(part in n and "lora_A" in n for n in names), part
    assert not any("lm_head" in n for n in names)
