"""The inference core (train/inference.py) on a tiny trained run: conversations become the
prompt training wrote, streamed answers equal the predict path's generation, stop strings and
max_new_tokens end answers as OpenAI's API says, and other problem types are refused by name."""

from __future__ import annotations

import threading

import pytest

from tui_tune.train.errors import UserError
from tui_tune.train.formatting import Turn
from tui_tune.train.inference import (
    LoadedRun,
    Reply,
    Settings,
    held_back,
    messages_conversation,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

QUESTIONS = ["What is 12 + 30?", "What is 7 + 5?", "What is 40 + 41?"]


@pytest.fixture(scope="module")
def loaded(talking_run) -> LoadedRun:
    return LoadedRun(talking_run)


def test_messages_become_the_runs_conversation():
    conv = messages_conversation([
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}])
    assert conv.system == "Be brief."
    assert conv.turns == [Turn("a", "b"), Turn("c", "")]
    bad = [[], [{"role": "assistant", "content": "x"}],
           [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
           [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
           [{"role": "tool", "content": "a"}], [{"role": "user", "content": 3}],
           [{"role": "user", "content": "a"}, {"role": "system", "content": "late"},
            {"role": "user", "content": "b"}]]
    for messages in bad:
        with pytest.raises(ValueError):
            messages_conversation(messages)


def test_stop_strings_are_held_back_until_decided():
    assert held_back("12 + ", ["+ 4"]) == ("12 ", False)  # "+ " may still become "+ 4"
    assert held_back("12 + 3", ["+ 4"]) == ("12 + 3", False)
    assert held_back("12 + 45", ["+ 4"]) == ("12 ", True)
    assert held_back("abc", []) == ("abc", False)
    assert held_back("abc", ["x", "bc"]) == ("a", True)


def test_settings_are_checked_by_name():
    settings = Settings()
    assert settings.updated(temperature=0.5, stop="END").stop == ["END"]
    assert settings.updated(top_k=None).top_k == 0
    for change in ({"temperature": -1}, {"top_p": 0}, {"max_new_tokens": 0},
                   {"top_k": "many"}, {"stop": [""]}):
        with pytest.raises(ValueError, match=next(iter(change))):
            settings.updated(**change)


def test_the_prompt_is_the_one_training_wrote(loaded):
    from tui_tune.train.tasks.causal_lm import prompt_examples

    examples = prompt_examples([{"prompt": q} for q in QUESTIONS], loaded.exp, loaded.tokenizer)
    for question, example in zip(QUESTIONS, examples):
        assert loaded.chat_prompt_ids([{"role": "user", "content": question}]) == \
            example.prompt_ids
    text = loaded.tokenizer.decode(examples[0].prompt_ids)
    assert text == "<|bos|><|prompt|>What is 12 + 30?<|eos|><|answer|>"
    assert loaded.text_prompt_ids(text) == examples[0].prompt_ids


def test_history_and_system_are_in_the_prompt(loaded):
    ids = loaded.chat_prompt_ids([
        {"role": "system", "content": "You are a calculator."},
        {"role": "user", "content": "What is 1 + 2?"}, {"role": "assistant", "content": "3"},
        {"role": "user", "content": "Add 5 to that."}])
    assert loaded.tokenizer.decode(ids) == (
        "<|bos|><|system|>You are a calculator.<|prompt|>What is 1 + 2?<|eos|><|answer|>3"
        "<|eos|><|prompt|>Add 5 to that.<|eos|><|answer|>")


def test_streamed_answers_equal_the_predict_generation(loaded):
    """Greedy (the run's settings): the pieces, joined, are what generation.py writes for the
    same prompts (the path of evaluation samples and `tui-tune predict`)."""
    from tui_tune.train.generation import generate_answers
    from tui_tune.train.tasks.causal_lm import prompt_examples

    examples = prompt_examples([{"prompt": q} for q in QUESTIONS], loaded.exp, loaded.tokenizer)
    expected = generate_answers(loaded.model, loaded.tokenizer, examples,
                                loaded.exp.prediction, loaded.accelerator.device, 1)
    for example, answer in zip(examples, expected):
        reply = Reply()
        pieces = list(loaded.stream(example.prompt_ids, loaded.settings, reply))
        assert "".join(pieces) == reply.text
        assert reply.text.strip() == answer
        assert reply.prompt_tokens == len(example.prompt_ids)
        assert reply.completion_tokens >= 1


def test_max_new_tokens_and_stop_strings_end_the_answer(loaded):
    ids = loaded.chat_prompt_ids([{"role": "user", "content": QUESTIONS[0]}])
    full = loaded.complete(ids, loaded.settings.updated(max_new_tokens=8))
    assert full.finish_reason == "stop" and len(full.text) >= 2
    short = loaded.complete(ids, loaded.settings.updated(max_new_tokens=1))
    assert short.finish_reason == "length" and short.completion_tokens == 1
    assert full.text.startswith(short.text)
    stop = full.text[1]
    cut = loaded.complete(ids, loaded.settings.updated(stop=[stop]))
    assert cut.text == full.text[:full.text.index(stop)]
    assert cut.finish_reason == "stop"


def test_a_reader_that_leaves_ends_generation(loaded):
    ids = loaded.chat_prompt_ids([{"role": "user", "content": QUESTIONS[0]}])
    before = threading.active_count()
    stream = loaded.stream(ids, loaded.settings.updated(max_new_tokens=200), Reply())
    next(stream)
    stream.close()
    assert threading.active_count() == before


def test_other_problem_types_are_refused_by_name(tmp_path, make_run_dir, demo_assets):
    run_dir = make_run_dir(tmp_path / "classify", [
        f'dataset.train_file="{demo_assets / "data" / "sentiment.jsonl"}"'],
        preset="demo-classify")
    with pytest.raises(UserError, match="classification run"):
        LoadedRun(run_dir)


def test_a_missing_checkpoint_is_named(talking_run):
    with pytest.raises(UserError, match="--checkpoint"):
        LoadedRun(talking_run, "step-999")
