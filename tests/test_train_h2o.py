"""H2O LLM Studio's data settings and habits: truncation, chained answers, its extra settings,
and the chat template final/ gets from the text markers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import completed_run, read_events

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.train.formatting import IGNORE_INDEX, Conversation, Turn, text_pieces
from tui_tune.train.tasks.causal_lm import load_examples

pytestmark = pytest.mark.xdist_group("train-h2o")  # module fixtures load once

LONG = "the quick brown fox jumps over the lazy dog " * 3  # > 16 tokens on its own
SYSTEM = "You are a calculator."


def conversation_rows(count: int) -> list[dict[str, str]]:
    """Three-turn conversations (system, a sum, a follow-up, a long answer), as H2O's OASST
    export chains them: id / parent_id."""
    rows = []
    for n in range(count):
        a, b, k = n % 50, (7 * n) % 50, n % 9 + 1
        turns = [(f"What is {a} + {b}?", str(a + b)), (f"Add {k} to that.", str(a + b + k)),
                 ("Reverse the word hello.", LONG.strip())]
        for t, (prompt, answer) in enumerate(turns):
            rows.append({"id": f"c{n}-{t}", "parent_id": f"c{n}-{t - 1}" if t else "",
                         "system": SYSTEM, "prompt": prompt, "answer": answer})
    return rows


@pytest.fixture(scope="module")
def conversations(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("h2o-data") / "conversations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in conversation_rows(40)))
    return path


def experiment(demo, data: Path, *overrides: str):
    sets = [f'general.backbone="{demo / "model"}"', f'dataset.train_file="{data}"',
            'dataset.parent_id_column="parent_id"', 'dataset.system_column="system"',
            "tokenizer.max_length=256", *overrides]
    return resolve(str(builtin_dir() / "demo-tiny.toml"), sets).experiment


@pytest.fixture(scope="module")
def tokenizer(demo_assets):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_assets / "model")


@pytest.fixture(scope="module")
def model(demo_assets):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(demo_assets / "model")


@pytest.fixture(scope="module")
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def learned_spans(tokenizer, example) -> list[str]:
    """The label runs that are learned, decoded: one string per contiguous span."""
    spans, current = [], []
    for label in example.labels + [IGNORE_INDEX]:
        if label != IGNORE_INDEX:
            current.append(label)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    return spans


def third_turns(examples):
    return [e for e in examples if e.prompt_text == "Reverse the word hello."]


# --- item 7: every answer of a chain is learned unless only_last_answer ---------------------

def test_a_three_turn_chain_learns_every_answer_unless_only_last_answer(
        demo_assets, conversations, tokenizer):
    every = third_turns(load_examples(experiment(demo_assets, conversations), tokenizer, 1).train)
    last = third_turns(load_examples(experiment(demo_assets, conversations,
                                                 "dataset.only_last_answer=true"),
                                     tokenizer, 1).train)
    assert every and len(every) == len(last)
    for chained, only in zip(every, last):
        assert chained.input_ids == only.input_ids  # the same text, other labels
        a, b, k = map(int, re.search(r"What is (\d+) \+ (\d+)\?.*Add (\d) to",
                                     tokenizer.decode(chained.input_ids)).groups())
        assert learned_spans(tokenizer, chained) == [
            f"{a + b}<|eos|>", f"{a + b + k}<|eos|>", LONG.strip() + "<|eos|>"]
        assert learned_spans(tokenizer, only) == [LONG.strip() + "<|eos|>"]
    unmasked = third_turns(load_examples(
        experiment(demo_assets, conversations, "dataset.mask_prompt_labels=false",
                   "dataset.only_last_answer=true"), tokenizer, 1).train)
    assert IGNORE_INDEX not in unmasked[0].labels  # only with masking, as in H2O


# --- item 6: generation sees the prompt whatever the training truncation cut ----------------

def test_an_answer_filling_max_length_leaves_generation_its_prompt(
        demo_assets, conversations, tokenizer, model, accelerator):
    from tui_tune.train.tasks.causal_lm import evaluate

    exp = experiment(demo_assets, conversations, "tokenizer.max_length=16",
                     "dataset.validation_size=0.25", "prediction.max_new_tokens=3",
                     "prediction.num_samples=64")
    data = load_examples(exp, tokenizer, seed=1)
    long = third_turns(data.val)
    assert long and all(e.prompt_length == 0 and len(e) == 16 for e in long)  # trained on
    for e in long:  # answer alone; generation still gets the end of the whole prompt
        given = tokenizer.decode(e.prompt_ids)
        assert len(e.prompt_ids) == 16 and given.endswith("<|prompt|>Reverse the word hello."
                                                           "<|eos|><|answer|>")
    result = evaluate(model, tokenizer, data.val, accelerator, exp)
    assert [s["prompt"] for s in result.samples] == \
        [tokenizer.decode(e.prompt_ids) for e in data.val]
    assert all(s["prompt"].endswith("<|answer|>") for s in result.samples)
    note = data.warnings
    cut = [e for e in data.train if e.prompt_cut or e.answer_cut]
    cut_val = [e for e in data.val if e.prompt_cut or e.answer_cut]
    assert len(note) == 1 and note[0].startswith(
        f"tokenizer.max_length = 16 cut {len(cut)} of {len(data.train)} training and "
        f"{len(cut_val)} of {len(data.val)} validation examples (truncation_side = left")
    only_answer = sum(1 for e in cut + cut_val if e.prompt_length == 0)
    assert f"; {only_answer} kept only answer tokens" in note[0]
    assert not load_examples(experiment(demo_assets, conversations), tokenizer, 1).warnings


@pytest.fixture(scope="module")
def h2o_run(tmp_path_factory, make_run_dir, conversations):
    """H2O's CPU test config in spirit: max_length 16 on chained conversations whose last answer
    alone fills it, every validation row generated (BLEU), H2O's prediction defaults."""
    run_dir = make_run_dir(tmp_path_factory.mktemp("runs") / "h2o", [
        f'dataset.train_file="{conversations}"', 'dataset.parent_id_column="parent_id"',
        'dataset.system_column="system"', "dataset.add_eos_to_system=true",
        "tokenizer.max_length=16", "dataset.validation_size=0.2", "training.batch_size=8",
        "training.max_steps=4", "training.eval_every_steps=4", "logging.log_every_steps=2",
        'prediction.metric="bleu"', "prediction.max_new_tokens=3", "prediction.batch_size=0",
        "prediction.temperature=0", "prediction.num_samples=8"])
    return completed_run(run_dir)


@pytest.mark.slow
def test_h2o_style_run_evaluates_and_says_once_what_was_cut(h2o_run):
    warnings = [e["message"] for e in read_events(h2o_run, "log") if e["level"] == "warning"]
    assert len([w for w in warnings if w.startswith("tokenizer.max_length = 16 cut ")]) == 1
    samples = read_events(h2o_run, "sample")
    assert len(samples) == 8 and read_events(h2o_run, "eval")
    for sample in samples:  # the text given to generate: markers, the prompt's last 16 tokens
        assert sample["prompt"].endswith("<|eos|><|answer|>")
        assert "<|prompt|>" in sample["prompt"] and "<|pad|>" not in sample["prompt"]
        if sample["reference"] == LONG.strip():
            assert sample["prompt"].endswith("Reverse the word hello.<|eos|><|answer|>")


# --- item 11: final/ carries a chat template of the training markers ------------------------

def chat(system: str, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}]
    for prompt, answer in turns:
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return messages


@pytest.mark.slow
def test_final_chat_template_writes_the_training_format(h2o_run, tokenizer):
    from transformers import AutoTokenizer

    from tui_tune.train.formatting import tokenize_conversations
    from tui_tune.train.setup import read_experiment

    exp = read_experiment(h2o_run)
    final = AutoTokenizer.from_pretrained(h2o_run / "final")
    turns = [("What is 2 + 3?", "5"), ("Add 4 to that.", "9"), ("And 1 more?", "10")]
    conv = Conversation(SYSTEM, [Turn(p, a) for p, a in turns])
    expected = "".join(text for text, _ in text_pieces(conv, exp.dataset, tokenizer))
    assert "<|system|>You are a calculator.<|eos|><|prompt|>" in expected  # add_eos_to_system
    assert final.apply_chat_template(chat(SYSTEM, turns), tokenize=False) == expected
    example = tokenize_conversations([conv], exp.dataset, tokenizer, 1024)[0]
    assert final.apply_chat_template(chat(SYSTEM, turns), tokenize=True,
                                     return_dict=True)["input_ids"] == example.input_ids
    asked = chat(SYSTEM, turns)[:-1]
    assert final.apply_chat_template(asked, tokenize=False, add_generation_prompt=True) == \
        tokenizer.decode(example.prompt_ids)


def test_marker_template_keeps_quotes_braces_and_newlines(tmp_path, demo_assets, conversations,
                                                          tokenizer):
    from transformers import AutoTokenizer

    from tui_tune.train.tasks.causal_lm import CausalLM

    exp = experiment(demo_assets, conversations, 'dataset.text_prompt_start="{{ \\"Q\\" }}\\n"',
                     'dataset.text_answer_separator="\\nA\\\\: "',
                     'dataset.text_system_start="### système\\n"',
                     "dataset.add_eos_to_prompt=false")
    CausalLM().write_final(AutoTokenizer.from_pretrained(demo_assets / "model"), exp, tmp_path)
    saved = AutoTokenizer.from_pretrained(tmp_path)
    turns = [("Hi 'you'", "Hello"), ("And?", "Bye")]
    expected = "".join(text for text, _ in text_pieces(
        Conversation(SYSTEM, [Turn(p, a) for p, a in turns]), exp.dataset, tokenizer))
    assert '{{ "Q" }}\nHi \'you\'\nA\\: Hello<|eos|>' in expected
    assert saved.apply_chat_template(chat(SYSTEM, turns), tokenize=False) == expected
    no_system = chat("", turns)
    assert saved.apply_chat_template(no_system, tokenize=False) == "".join(
        text for text, _ in text_pieces(Conversation("", [Turn(p, a) for p, a in turns]),
                                        exp.dataset, tokenizer))
    templated = experiment(demo_assets, conversations, "dataset.use_chat_template=true")
    CausalLM().write_final(AutoTokenizer.from_pretrained(demo_assets / "model"), templated,
                   tmp_path / "own")
    assert AutoTokenizer.from_pretrained(tmp_path / "own").chat_template == \
        tokenizer.chat_template  # trained with the backbone's template: that one stays


# --- item 8: H2O's settings that had no home -----------------------------------------------

def test_add_eos_to_system(demo_assets, conversations, tokenizer):
    def first_text(*more: str) -> str:
        data = load_examples(experiment(demo_assets, conversations, *more), tokenizer, 1)
        return tokenizer.decode(data.train[0].input_ids)

    assert first_text().startswith(f"<|bos|><|system|>{SYSTEM}<|prompt|>")
    assert first_text("dataset.add_eos_to_system=true").startswith(
        f"<|bos|><|system|>{SYSTEM}<|eos|><|prompt|>")


def test_limit_chained_samples_gives_one_example_per_whole_conversation(
        demo_assets, conversations, tokenizer):
    every = load_examples(experiment(demo_assets, conversations), tokenizer, 1)
    whole = load_examples(experiment(demo_assets, conversations,
                                     "dataset.limit_chained_samples=true"), tokenizer, 1)
    assert len(every.train) + len(every.val) == 120
    examples = whole.train + whole.val
    assert len(examples) == 40 and all(e.prompt_text == "Reverse the word hello."
                                       for e in examples)
    assert all(tokenizer.decode(e.input_ids).count("<|prompt|>") == 3 for e in examples)


def test_truncation_side_picks_the_end_that_is_cut(demo_assets, conversations, tokenizer):
    def second_turn(side: str):
        exp = experiment(demo_assets, conversations, "tokenizer.max_length=20",
                         f'tokenizer.truncation_side="{side}"')
        return next(e for e in load_examples(exp, tokenizer, 1).train
                    if e.prompt_text.startswith("Add "))

    left, right = second_turn("left"), second_turn("right")
    assert len(left) == len(right) == 20 and left.answer_cut == 0 and right.answer_cut > 0
    assert tokenizer.decode(left.input_ids).endswith(f"<|answer|>{left.answer_text}<|eos|>")
    assert tokenizer.decode(right.input_ids).startswith(f"<|bos|><|system|>{SYSTEM}<|prompt|>")
    assert left.prompt_ids == right.prompt_ids  # generation is given the same either way


def test_pretrained_false_starts_from_seeded_random_weights(demo_assets, conversations,
                                                            tokenizer):
    from tui_tune.train.errors import UserError
    from tui_tune.train.model import load_backbone, preflight

    def weights(*more: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(7)  # the worker seeds before loading
        model = load_backbone(experiment(demo_assets, conversations, *more), tokenizer,
                              torch.device("cpu"))
        return {k: v.clone() for k, v in model.state_dict().items()}

    trained, fresh, again = weights(), weights("architecture.pretrained=false"), \
        weights("architecture.pretrained=false")
    assert trained.keys() == fresh.keys()
    assert all(fresh[k].shape == trained[k].shape for k in trained)
    changed = [k for k in trained if not torch.equal(fresh[k], trained[k])]
    assert len(changed) > len(trained) / 2  # norms start at one either way
    assert all(torch.equal(fresh[k], again[k]) for k in fresh)
    with pytest.raises(UserError, match="architecture.pretrained.*float backbone_dtype"):
        preflight(experiment(demo_assets, conversations, "architecture.pretrained=false",
                             'architecture.backbone_dtype="int4"', 'adapter.method="qlora"'))


def test_prediction_temperature_zero_is_greedy_even_when_sampling(
        demo_assets, conversations, tokenizer, model):
    from tui_tune.train.generation import generate_answers

    exp = experiment(demo_assets, conversations, "prediction.max_new_tokens=6")
    val = load_examples(exp, tokenizer, 1).val[:6]
    greedy = generate_answers(model, tokenizer, val, exp.prediction, torch.device("cpu"))
    cold = experiment(demo_assets, conversations, "prediction.max_new_tokens=6",
                      "prediction.do_sample=true", "prediction.temperature=0").prediction
    assert generate_answers(model, tokenizer, val, cold, torch.device("cpu")) == greedy


class Recorder:
    """model.generate, counting the rows and new tokens of every call."""

    def __init__(self, model, monkeypatch):
        self.calls: list[tuple[int, int]] = []
        real = model.generate

        def counting(**kwargs):
            out = real(**kwargs)
            given = kwargs["input_ids"]
            self.calls.append((given.shape[0], out.shape[1] - given.shape[1]))
            return out

        monkeypatch.setattr(model, "generate", counting)


def test_prediction_max_time_ends_generation(demo_assets, conversations, tokenizer, model,
                                             monkeypatch):
    from tui_tune.train.generation import generate_answers

    forced = ("prediction.max_new_tokens=40", "prediction.min_new_tokens=40")
    val = load_examples(experiment(demo_assets, conversations), tokenizer, 1).val[:2]
    recorder = Recorder(model, monkeypatch)
    for more in ((), ("prediction.max_time=0.000001",)):
        pred = experiment(demo_assets, conversations, *forced, *more).prediction
        generate_answers(model, tokenizer, val, pred, torch.device("cpu"))
    assert recorder.calls == [(2, 40), (2, 1)]  # the limit stops it after the first token


def test_prediction_batch_size_zero_takes_the_training_batch_size(
        demo_assets, conversations, tokenizer, model, accelerator, monkeypatch):
    from tui_tune.train.tasks.causal_lm import evaluate

    exp = experiment(demo_assets, conversations, "prediction.batch_size=0",
                     "training.batch_size=3", 'prediction.metric="bleu"',
                     "prediction.max_new_tokens=2")
    val = load_examples(exp, tokenizer, 1).train[:8]
    recorder = Recorder(model, monkeypatch)
    evaluate(model, tokenizer, val, accelerator, exp)
    assert [rows for rows, _ in recorder.calls] == [3, 3, 2]
