"""`tui-tune demo prepare`: reproducible assets that load through the real transformers paths."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tui_tune.config.presets import builtin_dir, resolve


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_cli_builds_loadable_reproducible_assets(tmp_path, demo_assets):
    subprocess.run([sys.executable, "-m", "tui_tune", "demo", "prepare", str(tmp_path / "d")],
                   check=True, capture_output=True)
    for name in ("model/model.safetensors", "model/tokenizer.json", "data/train.jsonl",
                 "data/chained.jsonl", "encoder/model.safetensors", "encoder/tokenizer.json",
                 "data/ner.jsonl", "data/qa.jsonl", "seq2seq/model.safetensors",
                 "seq2seq/tokenizer.json", "data/numbers.jsonl", "vision/model.safetensors",
                 "vision/processor_config.json", "data/shapes.jsonl", "data/shapes/00000.png"):
        assert _digest(tmp_path / "d" / name) == _digest(demo_assets / name), name
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "d" / "model")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "d" / "model")
    assert tokenizer.pad_token and tokenizer.bos_token and tokenizer.eos_token
    assert 300 <= len(tokenizer) <= 600
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 3e6
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}],
                                         add_generation_prompt=True, tokenize=False)
    assert "What is 2 + 3?" in text and text.endswith("<|assistant|>")


def test_data_rows_and_chains(demo_assets):
    rows = [json.loads(x) for x in (demo_assets / "data/train.jsonl").read_text().splitlines()]
    assert len(rows) >= 2000 and set(rows[0]) == {"system", "prompt", "answer"}
    a, b = rows[0]["prompt"].removeprefix("What is ").rstrip("?").split(" + ")
    assert int(rows[0]["answer"]) == int(a) + int(b)
    chained = [json.loads(x) for x in (demo_assets / "data/chained.jsonl").read_text().splitlines()]
    ids = {r["id"] for r in chained}
    assert all(r["parent_id"] in ids for r in chained if r["parent_id"])


def test_demo_preset_points_at_the_demo_layout():
    exp = resolve(str(builtin_dir() / "demo-tiny.toml")).experiment
    assert exp.general.backbone == "demo/model"
    assert exp.dataset.train_file == "demo/data/train.jsonl"


def test_the_encoder_is_a_cased_wordpiece_bert_that_splits_names(demo_assets):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "encoder")
    assert tokenizer.is_fast and tokenizer.pad_token == "[PAD]" and 300 < len(tokenizer) < 700
    encoded = tokenizer(["Zoe", "visited", "Kuala", "Lumpur", "!"], is_split_into_words=True)
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and "[UNK]" not in pieces
    assert encoded.word_ids()[1:3] == [0, 0] and pieces[2].startswith("##")  # Z ##o ##e
    assert tokenizer.decode(encoded["input_ids"], skip_special_tokens=True) == \
        "Zoe visited Kuala Lumpur!"
    model = AutoModelForTokenClassification.from_pretrained(demo_assets / "encoder", num_labels=3)
    assert type(model).__name__ == "BertForTokenClassification"
    assert 0.05e6 < sum(p.numel() for p in model.parameters()) < 0.5e6


def test_tagged_rows_have_one_bio_tag_per_word(demo_assets):
    rows = [json.loads(x) for x in (demo_assets / "data/ner.jsonl").read_text().splitlines()]
    assert len(rows) == 2000 and all(len(r["tokens"]) == len(r["tags"]) for r in rows)
    tags = {t for r in rows for t in r["tags"]}
    assert tags == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}
    for row in rows:  # an inside tag continues an entity of its type
        for before, tag in zip(["O", *row["tags"]], row["tags"]):
            assert not tag.startswith("I-") or before[2:] == tag[2:], row


def test_tokens_preset_points_at_the_encoder_and_tagged_data():
    exp = resolve(str(builtin_dir() / "demo-tokens.toml")).experiment
    assert exp.general.problem_type == "token_classification"
    assert exp.general.backbone == "demo/encoder"
    assert exp.dataset.train_file == "demo/data/ner.jsonl"


def test_qa_rows_answer_from_their_context_and_some_need_windows(demo_assets):
    """Every answer is at its answer_start, about one in seven has none, and at the demo-qa
    preset's max_length some contexts are read in several windows."""
    from transformers import AutoTokenizer

    rows = [json.loads(x) for x in (demo_assets / "data/qa.jsonl").read_text().splitlines()]
    assert len(rows) == 2000
    for row in rows:
        start, answer = row["answer_start"], row["answer"]
        assert row["context"][start:start + len(answer)] == answer if answer else start == -1
    assert 0.1 < sum(1 for r in rows if not r["answer"]) / len(rows) < 0.2
    exp = resolve(str(builtin_dir() / "demo-qa.toml")).experiment
    assert exp.general.problem_type == "extractive_qa"
    assert (exp.general.backbone, exp.dataset.train_file) == ("demo/encoder", "demo/data/qa.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "encoder")
    lengths = [len(ids) for ids in tokenizer([r["question"] for r in rows[:200]],
                                             [r["context"] for r in rows[:200]])["input_ids"]]
    assert 0.1 < sum(1 for n in lengths if n > exp.tokenizer.max_length) / 200 < 0.6


def test_the_seq2seq_demo_is_a_t5_spelling_numbers(demo_assets):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from tui_tune.config.presets import resolve
    from tui_tune.train.demo_seq2seq import number_words

    assert [number_words(n) for n in (0, 7, 13, 40, 105, 372, 999)] == [
        "zero", "seven", "thirteen", "forty", "one hundred five",
        "three hundred seventy two", "nine hundred ninety nine"]
    rows = [json.loads(x) for x in (demo_assets / "data/numbers.jsonl").read_text().splitlines()]
    assert len(rows) == 3000 and all(r["answer"] == number_words(int(r["prompt"])) for r in rows)
    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "seq2seq")
    ids = tokenizer("three hundred seventy two").input_ids
    assert ids[-1] == tokenizer.eos_token_id and len(ids) <= 6  # whole words, then </s>
    model = AutoModelForSeq2SeqLM.from_pretrained(demo_assets / "seq2seq")
    assert model.config.model_type == "t5" and model.config.decoder_start_token_id == \
        tokenizer.pad_token_id
    assert sum(p.numel() for p in model.parameters()) < 1e6
    exp = resolve("demo-seq2seq").experiment
    assert exp.general.backbone == "demo/seq2seq" and exp.prediction.metric == "rougeL"
    assert exp.dataset.train_file == "demo/data/numbers.jsonl"
