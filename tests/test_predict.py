"""Predictions: dataset.test_file at the end of a completed run and `tui-tune predict` later,
on tiny real runs. The answers are what final/ gives when a user loads it with transformers,
the file holds every input column, appears whole or not at all, and a bad file is one line."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import completed_run
from worker_env import worker_env

from tui_tune.config.presets import resolve
from tui_tune.rundir import RunDir
from tui_tune.runs.predictions import partial_path
from tui_tune.runs.preflight import preflight

# one xdist worker per module, so its shared runs happen once under `make test` (-n 2)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("predict")]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def predict_argv(run_dir: Path, *args: str) -> list[str]:
    """`tui-tune predict` with the run's parent as the runs folder."""
    return [sys.executable, "-m", "tui_tune", "predict", "--runs-dir", str(run_dir.parent),
            run_dir.name, *args]


def predict(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(predict_argv(run_dir, *args), env=worker_env(), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def test_rows(demo_assets) -> list[dict]:
    """Prompts without answers, with columns the run does not read (kept in the output)."""
    rows = read_jsonl(demo_assets / "data" / "train.jsonl")[:24]
    return [{"id": n, "prompt": r["prompt"], "note": f"row {n}"} for n, r in enumerate(rows)]


@pytest.fixture(scope="module")
def causal_run(tmp_path_factory, make_run_dir, test_rows):
    """demo-tiny, shortened, with a csv test file; generation batches of 5 (left padding)."""
    folder = tmp_path_factory.mktemp("predict")
    with open(folder / "test.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, ["id", "prompt", "note"])
        writer.writeheader()
        writer.writerows(test_rows)
    run_dir = make_run_dir(folder / "causal", [
        "training.max_steps=30", 'training.save_checkpoint="disable"',
        "prediction.batch_size=5", f'dataset.test_file="{folder / "test.csv"}"'])
    return completed_run(run_dir)


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory, make_run_dir, demo_assets):
    """demo-classify, shortened, with a jsonl test file of texts alone (no labels)."""
    folder = tmp_path_factory.mktemp("predict")
    rows = read_jsonl(demo_assets / "data" / "sentiment.jsonl")[:30]
    (folder / "test.jsonl").write_text("".join(json.dumps({"text": r["text"]}) + "\n"
                                               for r in rows))
    run_dir = make_run_dir(folder / "classify", [
        f'dataset.train_file="{demo_assets / "data" / "sentiment.jsonl"}"',
        "training.max_steps=20", "training.eval_every_steps=20",
        "training.evaluate_before_training=false", 'training.save_checkpoint="disable"',
        f'dataset.test_file="{folder / "test.jsonl"}"'], preset="demo-classify")
    return completed_run(run_dir)


def reference_answers(final: Path, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers from final/ as a user loads it: its tokenizer's chat template (the
    run's text markers) and generate(), one prompt at a time."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    answers = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        answers.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:],
                                        skip_special_tokens=True).strip())
    return answers


def test_a_causal_run_with_a_test_file_writes_every_column_and_the_greedy_answers(
        causal_run, test_rows):
    path = RunDir(causal_run).predictions(".csv")
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        written = list(reader)
    assert reader.fieldnames == ["id", "prompt", "note", "prediction"]
    assert [(r["id"], r["prompt"], r["note"]) for r in written] == [
        (str(r["id"]), r["prompt"], r["note"]) for r in test_rows]
    expected = reference_answers(RunDir(causal_run).final, [r["prompt"] for r in test_rows], 8)
    assert [r["prediction"] for r in written] == expected
    assert all(expected) and len(set(expected)) > 1  # real answers, not one repeated blank


def test_tui_tune_predict_writes_parquet_for_a_finished_run(causal_run, test_rows, tmp_path):
    """Another file later: parquet in, parquet out (by default in the run's folder), the same
    answers as at the end of training; a second call does not replace it without --force."""
    pq.write_table(pa.Table.from_pylist(test_rows[:10]), tmp_path / "later.parquet")
    result = predict(causal_run, "--file", str(tmp_path / "later.parquet"))
    assert result.returncode == 0, result.stderr
    out = RunDir(causal_run).predictions(".parquet", "later")
    assert result.stdout.strip() == str(out)
    assert "predict: 10/10 rows" in result.stderr
    table = pq.read_table(out)
    assert table.column_names == ["id", "prompt", "note", "prediction"]
    assert table.column("id").to_pylist() == list(range(10))
    with open(RunDir(causal_run).predictions(".csv"), newline="", encoding="utf-8") as file:
        at_the_end = [r["prediction"] for r in csv.DictReader(file)][:10]
    assert table.column("prediction").to_pylist() == at_the_end
    again = predict(causal_run, "--file", str(tmp_path / "later.parquet"))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        (f"tui-tune: --out {out}: already exists; pick another --out or add --force to "
        "replace it.")]


def test_an_interrupted_predict_leaves_no_output(causal_run, test_rows, tmp_path):
    """Ctrl-C (SIGINT to the foreground group) while rows are being predicted: neither the
    output nor its .partial file is left."""
    rows = [{**r, "id": n} for n, r in enumerate(test_rows * 200)]
    (tmp_path / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "big-out.csv"
    process = subprocess.Popen(
        predict_argv(causal_run, "--file", str(tmp_path / "big.jsonl"), "--out", str(out)),
        env=worker_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        for line in process.stderr:
            if line.startswith("predict: 0/"):
                break  # the model is loaded and predicting
        os.killpg(process.pid, signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, rest
    assert "interrupted; no predictions written" in rest
    assert not out.exists() and not partial_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl"]


@pytest.mark.skipif(torch.cuda.device_count() == 1,
                    reason="one GPU: two nccl ranks cannot share it; the gloo CPU run covers "
                    "two ranks")
def test_two_ranks_share_the_rows_and_write_them_in_order(causal_run, tmp_path):
    """The prediction process under `accelerate launch` with two ranks (gloo on the CPU):
    each generates every other row, rank 0 writes them all in the file's order, the same
    answers as one process gave, and the progress line and the path come once."""
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    out = tmp_path / "two.csv"
    test_file = RunDir(causal_run).root.parent / "test.csv"
    result = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         "-m", "tui_tune.train.predict", str(causal_run), "--file", str(test_file),
         "--out", str(out)],
        env=worker_env(), capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out)
    assert result.stderr.count("predict: 24/24 rows") == 1
    assert out.read_text() == RunDir(causal_run).predictions(".csv").read_text()


def test_classification_predictions_equal_final_as_a_sequence_classifier(classify_run,
                                                                          demo_assets):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    final = RunDir(classify_run).final
    model = AutoModelForSequenceClassification.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    with open(RunDir(classify_run).predictions(".csv"), newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        written = list(reader)
    assert reader.fieldnames == ["text", "prediction"] + [f"probability_{n}" for n in names]
    texts = [r["text"] for r in read_jsonl(demo_assets / "data" / "sentiment.jsonl")[:30]]
    assert [r["text"] for r in written] == texts
    for row, text in zip(written, texts):
        ids = tokenizer((tokenizer.bos_token or "") + text, add_special_tokens=False,
                        return_tensors="pt")
        with torch.no_grad():
            probs = torch.softmax(model(**ids).logits[0].double(), dim=-1)
        assert row["prediction"] == names[int(probs.argmax())]
        for name, p in zip(names, probs.tolist()):
            assert float(row[f"probability_{name}"]) == pytest.approx(p, abs=1e-5)
    truth = [r["label"] for r in read_jsonl(demo_assets / "data" / "sentiment.jsonl")[:30]]
    assert sum(r["prediction"] == t for r, t in zip(written, truth)) > 20  # it learned


def test_a_bad_file_is_one_line_naming_the_flag_the_file_and_the_row(causal_run, tmp_path):
    nested = tmp_path / "nested.jsonl"
    nested.write_text(json.dumps({"prompt": "fine"}) + "\n"
                      + json.dumps({"prompt": ["a", "list"]}) + "\n")
    result = predict(causal_run, "--file", str(nested))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        (f"tui-tune: --file {nested}: row 2, column 'prompt' holds a nested value (list); "
        "tui-tune reads text cells: flatten it into text columns first; see "
        "dataset.prompt_columns.")]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("question\nWhat is 1 + 1?\n")
    message = predict(causal_run, "--file", str(wrong)).stderr.strip()
    assert message == (f"tui-tune: --file {wrong}: column 'prompt' is not in the file (it "
                       "has: question); see dataset.prompt_columns.")
    missing = predict(causal_run, "--file", str(tmp_path / "gone.csv"))
    assert missing.returncode == 2 and f"--file {tmp_path / 'gone.csv'}: file not found" \
        in missing.stderr
    clash = tmp_path / "clash.csv"
    clash.write_text("prompt,prediction\nWhat is 1 + 1?,2\n")
    assert "row 1 has a column 'prediction', a name the predictions take" in predict(
        causal_run, "--file", str(clash)).stderr
    nothing = predict(causal_run, "--file", str(wrong), "--checkpoint",
                       "step-5")
    assert nothing.stderr.strip() == (f"tui-tune: --checkpoint step-5: not a complete "
                                      f"checkpoint of {causal_run.name} (it has: none).")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clash.csv", "nested.jsonl",
                                                          "wrong.csv"]


def test_a_run_without_final_is_refused_naming_the_run(make_run_dir, tmp_path, test_rows):
    run_dir = make_run_dir(tmp_path / "queued")
    (tmp_path / "t.jsonl").write_text(json.dumps(test_rows[0]) + "\n")
    result = predict(run_dir, "--file", str(tmp_path / "t.jsonl"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tui-tune: RUN {run_dir}: the run has no final/ weights (it did not complete); "
        "predict from a checkpoint with --checkpoint (it has: none).")


def test_the_launch_preflight_checks_the_test_file_without_answers(preset_workdir):
    (preset_workdir / "test.jsonl").write_text(json.dumps({"prompt": "no answer"}) + "\n")
    (preset_workdir / "bad.jsonl").write_text(json.dumps({"question": "x"}) + "\n")

    def found(path: Path) -> dict[str, str]:
        exp = resolve("demo-tiny", [f'dataset.test_file="{path}"']).experiment
        return {p.key: p.message for p in preflight(exp, cuda_devices=0)}

    assert found(preset_workdir / "test.jsonl") == {}
    message = found(preset_workdir / "bad.jsonl")["dataset.prompt_columns"]
    assert message.startswith(f"file {preset_workdir / 'bad.jsonl'}: column 'prompt' is not")
    assert "file not found" in found(preset_workdir / "gone.csv")["dataset.test_file"]


def test_tui_tune_predict_reads_a_messages_file(causal_run, test_rows, tmp_path):
    """A file of OpenAI messages (issue 20) gets the answers the same prompts get as
    columns: each row's last user message, answered."""
    rows = [{"messages": [{"role": "user", "content": r["prompt"]}]} for r in test_rows[:6]]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "chat-predictions.jsonl"
    result = predict(causal_run, "--file", str(tmp_path / "chat.jsonl"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = read_jsonl(out)
    assert [r["messages"] for r in written] == [r["messages"] for r in rows]
    with open(RunDir(causal_run).predictions(".csv"), newline="", encoding="utf-8") as file:
        as_columns = [r["prediction"] for r in csv.DictReader(file)][:6]
    assert [r["prediction"] for r in written] == as_columns
