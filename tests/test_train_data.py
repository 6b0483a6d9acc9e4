"""The worker's data, batching, model and optimizer pieces, in-process on the real demo assets."""

from __future__ import annotations

import json
import random

import pytest
import torch

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.train.collate import (
    PackedCollator,
    PaddedCollator,
    epoch_batches,
    padding_fraction,
    rank_batches,
)
from tui_tune.train.errors import UserError
from tui_tune.train.formatting import IGNORE_INDEX
from tui_tune.train.tasks.causal_lm import (
    causal_lm_loss,
    forward_batch,
    load_examples,
    training_loss,
)

pytestmark = pytest.mark.xdist_group("train-data")  # module fixtures load once


def experiment(demo, *overrides: str, train_file: str | None = None):
    sets = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{train_file or demo / "data" / "train.jsonl"}"', *overrides]
    return resolve(str(builtin_dir() / "demo-tiny.toml"), sets).experiment


@pytest.fixture(scope="module")
def tokenizer(demo_assets):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_assets / "model")


def answer_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX])


def test_text_markers_mask_the_prompt(demo_assets, tokenizer):
    exp = experiment(demo_assets, 'dataset.system_column="system"')
    data = load_examples(exp, tokenizer, seed=1)
    ex = data.train[0]
    assert answer_text(tokenizer, ex) == ex.answer_text + "<|eos|>"
    text = tokenizer.decode(ex.input_ids)
    assert text.startswith("<|bos|><|system|>") and f"<|prompt|>{ex.prompt_text}<|eos|><|answer|>" in text
    assert ex.labels[:ex.prompt_length] == [IGNORE_INDEX] * ex.prompt_length
    unmasked = load_examples(experiment(demo_assets, "dataset.mask_prompt_labels=false"),
                             tokenizer, seed=1).train[0]
    assert IGNORE_INDEX not in unmasked.labels


def test_auto_split_is_seeded_and_sampled(demo_assets, tokenizer):
    exp = experiment(demo_assets, "dataset.validation_size=0.1", "dataset.data_sample=0.5")
    a, b = load_examples(exp, tokenizer, seed=3), load_examples(exp, tokenizer, seed=3)
    c = load_examples(exp, tokenizer, seed=4)
    assert len(a.train) + len(a.val) == 2000 and len(a.val) == 200
    assert [e.prompt_text for e in a.val] == [e.prompt_text for e in b.val]
    assert [e.prompt_text for e in a.val] != [e.prompt_text for e in c.val]


def test_chat_template_and_chained_turns(demo_assets, tokenizer):
    chained = demo_assets / "data" / "chained.jsonl"
    exp = experiment(demo_assets, 'dataset.parent_id_column="parent_id"',
                     "dataset.use_chat_template=true", 'dataset.system_column="system"',
                     "dataset.only_last_answer=true", train_file=str(chained))
    data = load_examples(exp, tokenizer, seed=1)
    rows = {r["id"]: r for r in map(json.loads, chained.read_text().splitlines())}
    second = next(e for e in data.train if e.prompt_text.startswith("Add "))
    text = tokenizer.decode(second.input_ids)
    first_turn = next(r for r in rows.values()
                      if r["parent_id"] == "" and f"<|user|>{r['prompt']}<|eos|>"
                      f"<|assistant|>{r['answer']}<|eos|>" in text)
    assert text.startswith("<|bos|><|system|>You are a calculator.<|eos|>")
    assert text.endswith(f"<|assistant|>{second.answer_text}<|eos|>")
    assert answer_text(tokenizer, second) == second.answer_text + "<|eos|>"  # history masked
    assert first_turn["answer"] not in answer_text(tokenizer, second)


def test_truncation_cuts_the_prompt_from_the_left(demo_assets, tokenizer):
    exp = experiment(demo_assets, "tokenizer.max_length=8")
    ex = load_examples(exp, tokenizer, seed=1).train[0]
    assert len(ex) == 8 and answer_text(tokenizer, ex) == ex.answer_text + "<|eos|>"
    assert tokenizer.decode(ex.input_ids).endswith(f"?<|eos|><|answer|>{ex.answer_text}<|eos|>")


def test_csv_parquet_and_custom_validation(tmp_path, demo_assets, tokenizer):
    import datasets

    rows = [json.loads(x) for x in (demo_assets / "data/train.jsonl").read_text().splitlines()]
    table = datasets.Dataset.from_list(rows[:300])
    table.to_csv(str(tmp_path / "t.csv"), index=False)
    table.to_parquet(str(tmp_path / "t.parquet"))
    datasets.Dataset.from_list(rows[300:350]).to_parquet(str(tmp_path / "v.parquet"))
    for name in ("t.csv", "t.parquet"):
        exp = experiment(demo_assets, 'dataset.validation_strategy="custom"',
                         f'dataset.validation_file="{tmp_path / "v.parquet"}"',
                         train_file=str(tmp_path / name))
        data = load_examples(exp, tokenizer, seed=1)
        assert (len(data.train), len(data.val)) == (300, 50)
        assert data.val[0].prompt_text == rows[300]["prompt"]


def test_several_prompt_columns_are_joined(tmp_path, demo_assets, tokenizer):
    rows = [{"q": f"What is {n} + 1?", "hint": "Add one.", "a": str(n + 1)} for n in range(40)]
    (tmp_path / "multi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    exp = experiment(demo_assets, 'dataset.prompt_columns=["q", "hint"]',
                     'dataset.prompt_column_separator=" | "', 'dataset.answer_column="a"',
                     "dataset.add_eos_to_prompt=false", train_file=str(tmp_path / "multi.jsonl"))
    ex = load_examples(exp, tokenizer, seed=1).train[0]
    assert ex.prompt_text.endswith("? | Add one.")
    assert tokenizer.decode(ex.input_ids).endswith(f"? | Add one.<|answer|>{ex.answer_text}<|eos|>")


def test_user_errors_name_the_setting_and_file(tmp_path, demo_assets, tokenizer):
    exp = experiment(demo_assets, 'dataset.prompt_columns=["question"]')
    with pytest.raises(UserError, match=r"dataset.prompt_columns.*train.jsonl.*'question'"):
        load_examples(exp, tokenizer, seed=1)
    with pytest.raises(UserError, match="dataset.train_file.*nothere.jsonl.*not found"):
        load_examples(experiment(demo_assets, train_file=str(tmp_path / "nothere.jsonl")),
                      tokenizer, seed=1)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(UserError, match="'.txt' is not a data format"):
        load_examples(experiment(demo_assets, train_file=str(tmp_path / "x.txt")),
                      tokenizer, seed=1)


def test_quantile_padding_and_length_grouping(demo_assets, tokenizer):
    train = load_examples(experiment(demo_assets, "tokenizer.max_length=64"), tokenizer, 1).train
    lengths = [len(e) for e in train]
    batch = [train[i] for i in range(16)]
    full = PaddedCollator(tokenizer.pad_token_id)(batch)
    trimmed = PaddedCollator(tokenizer.pad_token_id, quantile=0.5)(batch)
    assert full["input_ids"].shape[1] == max(len(e) for e in batch)
    assert trimmed["input_ids"].shape[1] == sorted(len(e) for e in batch)[7]
    longest = max(range(16), key=lambda i: len(batch[i]))  # cut at its start: answer kept
    assert trimmed["labels"][longest].tolist() == batch[longest].labels[-trimmed["labels"].shape[1]:]

    def waste(group: bool) -> float:
        plan = epoch_batches(lengths, 16, seed=5, epoch=0, group_by_length=group, world_size=1)
        collate = PaddedCollator(tokenizer.pad_token_id)
        return sum(padding_fraction(collate([train[i] for i in b])) for b in plan) / len(plan)
    assert waste(True) < waste(False) / 2


def test_batches_are_seeded_and_sharded_per_rank():
    lengths = [5] * 103
    plan = epoch_batches(lengths, 4, seed=7, epoch=0, group_by_length=False, world_size=2)
    assert plan == epoch_batches(lengths, 4, seed=7, epoch=0, group_by_length=False, world_size=2)
    assert plan != epoch_batches(lengths, 4, seed=7, epoch=1, group_by_length=False, world_size=2)
    r0, r1 = rank_batches(plan, 0, 2), rank_batches(plan, 1, 2)
    assert len(r0) == len(r1) == 12
    assert not {i for b in r0 for i in b} & {i for b in r1 for i in b}


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_packed_and_padded_losses_match(demo_assets, tokenizer, attn):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(demo_assets / "model", attn_implementation=attn)
    train = load_examples(experiment(demo_assets), tokenizer, seed=1).train
    batch = [train[i] for i in random.Random(0).sample(range(len(train)), 8)]
    with torch.no_grad():
        padded = PaddedCollator(tokenizer.pad_token_id)(batch)
        packed = PackedCollator()(batch)
        assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
        loss_padded, n_padded = causal_lm_loss(forward_batch(model, padded), padded)
        loss_packed, n_packed = causal_lm_loss(forward_batch(model, packed), packed)
        assert int(n_padded) == int(n_packed)
        assert float(loss_packed) == pytest.approx(float(loss_padded), abs=1e-5)
        per_sample_padded, _ = causal_lm_loss(forward_batch(model, padded), padded,
                                              "sample_avg_ce")
        per_sample_packed, _ = causal_lm_loss(forward_batch(model, packed), packed,
                                              "sample_avg_ce")
        assert float(per_sample_packed) == pytest.approx(float(per_sample_padded), abs=1e-5)
        # with the cache on, packed sequences would see each other: the loss moves
        leaky = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                      use_cache=True).logits
        assert abs(float(causal_lm_loss(leaky, packed)[0]) - float(loss_padded)) > 1e-4


def test_training_loss_is_our_loss_computed_by_the_model(demo_assets, tokenizer):
    """The training step's loss comes from the model's forward (so liger-kernel can fuse it):
    the same numbers as our logits-based loss, padded or packed, gradients included."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(demo_assets / "model")
    train = load_examples(experiment(demo_assets), tokenizer, seed=1).train
    batch = [train[i] for i in random.Random(3).sample(range(len(train)), 6)]
    for collated in (PaddedCollator(tokenizer.pad_token_id)(batch), PackedCollator()(batch)):
        for mode in ("token_avg_ce", "sample_avg_ce"):
            ours, _ = causal_lm_loss(forward_batch(model, collated), collated, mode)
            ours.backward()
            expected = [p.grad.clone() for p in model.parameters()]
            model.zero_grad()
            loss = training_loss(model, collated, mode)
            loss.backward()
            assert float(loss) == pytest.approx(float(ours), abs=1e-6)
            assert all(torch.allclose(p.grad, g, atol=1e-6)
                       for p, g in zip(model.parameters(), expected))
            model.zero_grad()
    masked = PaddedCollator(tokenizer.pad_token_id)(batch[:2])
    masked["labels"].fill_(-100)  # every answer cut away: 0, not 0/0
    assert float(training_loss(model, masked, "token_avg_ce")) == 0.0

    class OldStyleForward(torch.nn.Module):  # remote code without **kwargs in its forward
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids=None, attention_mask=None, position_ids=None,
                    use_cache=None, labels=None):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=position_ids, use_cache=use_cache, labels=labels)

    padded = PaddedCollator(tokenizer.pad_token_id)(batch)
    expected, _ = causal_lm_loss(forward_batch(model, padded), padded)
    old_style = OldStyleForward(model)
    for _ in range(2):  # the second step goes straight to the logits path
        assert float(training_loss(old_style, padded, "token_avg_ce")) == \
            pytest.approx(float(expected), abs=1e-6)
    assert old_style._refuses_num_items


def test_train_on_validation_adds_the_validation_rows(demo_assets, tokenizer):
    plain = load_examples(experiment(demo_assets), tokenizer, seed=1)
    both = load_examples(experiment(demo_assets, "training.train_on_validation=true"),
                         tokenizer, seed=1)
    assert len(both.val) == len(plain.val) > 0
    assert len(both.train) == len(plain.train) + len(plain.val)
    val_prompts = {e.prompt_text for e in plain.val}
    assert val_prompts <= {e.prompt_text for e in both.train}


def test_skip_and_random_parent_change_the_history_each_epoch(demo_assets, tokenizer):
    """Second turns ("Add k to that.") see their first turn ("What is a + b?"): dropped with
    skip_parent_probability, replaced by a random row with random_parent_probability."""
    import re

    chained = str(demo_assets / "data" / "chained.jsonl")

    def seconds(*more: str, epoch: int = 0) -> list[str]:
        exp = experiment(demo_assets, 'dataset.parent_id_column="parent_id"', *more,
                         "tokenizer.max_length=256", train_file=chained)
        train = load_examples(exp, tokenizer, seed=1).for_epoch(epoch)
        return [tokenizer.decode(e.input_ids) for e in train if e.prompt_text.startswith("Add ")]

    def true_history(text: str) -> bool:
        found = re.search(r"What is (\d+) \+ (\d+)\?.*<\|answer\|>(\d+)<.*Add (\d) to that"
                          r".*<\|answer\|>(\d+)<", text)
        a, b, first, k, second = map(int, found.groups()) if found else (0, 0, 1, 0, 0)
        return a + b == first and first + k == second

    plain = seconds()
    assert all(t.count("<|prompt|>") == 2 and true_history(t) for t in plain)
    assert all(t.count("<|prompt|>") == 1
               for t in seconds("augmentation.skip_parent_probability=1.0"))
    half = [seconds("augmentation.skip_parent_probability=0.5", epoch=e) for e in (0, 1)]
    kept = [sum(t.count("<|prompt|>") == 2 for t in h) / len(h) for h in half]
    assert all(0.4 < k < 0.6 for k in kept), kept
    assert half[0] != half[1]  # drawn anew each epoch
    assert half[0] == seconds("augmentation.skip_parent_probability=0.5")  # and seeded
    randomised = seconds("augmentation.random_parent_probability=1.0")
    assert all(t.count("<|prompt|>") == 2 for t in randomised)
    assert sum(true_history(t) for t in randomised) < 0.1 * len(randomised)


def test_custom_markers_eos_options_and_added_marker_tokens(demo_assets, tokenizer):
    from tui_tune.train.model import load_backbone, load_tokenizer

    sets = ['dataset.text_prompt_start="<|q|>"', 'dataset.text_answer_separator="<|a|>"',
            'dataset.system_column="system"', 'dataset.text_system_start="<|s|>"',
            "dataset.add_eos_to_answer=false", "dataset.add_eos_to_prompt=false"]
    ex = load_examples(experiment(demo_assets, *sets), tokenizer, seed=1).train[0]
    text = tokenizer.decode(ex.input_ids)
    assert text.startswith("<|bos|><|s|>") and text.endswith(f"<|a|>{ex.answer_text}")
    assert f"<|q|>{ex.prompt_text}<|a|>" in text and "<|eos|>" not in text
    assert answer_text(tokenizer, ex) == ex.answer_text  # no end token to learn
    exp = experiment(demo_assets, *sets, "tokenizer.add_prompt_answer_tokens=true")
    grown = load_tokenizer(exp)
    assert len(grown) == len(tokenizer) + 3
    assert len(grown("<|q|>", add_special_tokens=False).input_ids) == 1
    assert len(tokenizer("<|q|>", add_special_tokens=False).input_ids) > 1
    model = load_backbone(exp, grown, torch.device("cpu"))
    assert model.get_input_embeddings().num_embeddings == len(grown)
    marked = load_examples(exp, grown, seed=1).train[0]
    assert len(marked) < len(ex) and grown.convert_tokens_to_ids("<|q|>") in marked.input_ids


def _bad_files(folder):
    """Files the worker must refuse, each with the setting and the words naming the row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": None, "answer": "a"},
                                         {"prompt": {"text": "hi"}, "answer": "b"}]),
                   folder / "nested.pq")
    (folder / "latin.csv").write_bytes("prompt,answer\nhi,yo\nCafé?,Oui\n".encode("latin-1"))
    (folder / "gap.jsonl").write_text('{"prompt": "a", "answer": "b"}\n{"prompt": "c"}\n')
    return [("nested.pq", "dataset.prompt_columns", "row 2, column 'prompt' holds a nested"),
            ("latin.csv", "dataset.train_file", "row 2, column 'prompt' has bytes that are not"),
            ("gap.jsonl", "dataset.answer_column", "row 2 has no value in column 'answer'")]


def test_worker_refuses_what_the_preflight_refuses_naming_setting_file_and_row(
        tmp_path, demo_assets, tokenizer):
    from tui_tune.runs.preflight import data_file_problems

    for name, setting, words in _bad_files(tmp_path):
        exp = experiment(demo_assets, train_file=str(tmp_path / name))
        with pytest.raises(UserError) as info:  # never stringified, never a decoder traceback
            load_examples(exp, tokenizer, seed=1)
        assert (info.value.setting, info.value.file) == (setting, str(tmp_path / name))
        assert words in str(info.value)
        [problem] = data_file_problems(str(tmp_path / name), "dataset.train_file", exp.dataset)
        assert problem.key == setting and words in problem.message


def test_parquet_with_the_pq_extension_trains(tmp_path, demo_assets, tokenizer):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(x) for x in (demo_assets / "data/train.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows[:100]), tmp_path / "h2o.pq")
    data = load_examples(experiment(demo_assets, train_file=str(tmp_path / "h2o.pq")),
                         tokenizer, seed=1)
    assert len(data.train) + len(data.val) == 100


def test_chat_template_asked_of_a_tokenizer_without_one_is_refused_before_loading(
        tmp_path, demo_assets):
    import shutil

    from tui_tune.train.model import preflight

    model = tmp_path / "model"
    shutil.copytree(demo_assets / "model", model)
    (model / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    exp = experiment(demo_assets, f'general.backbone="{model}"', "dataset.use_chat_template=true")
    with pytest.raises(UserError, match="dataset.use_chat_template.*no chat template"):
        preflight(exp)
    preflight(experiment(demo_assets, "dataset.use_chat_template=true"))  # the demo has one
