"""Generation settings really change what `generate` does (stop strings, top-k, top-p, length)."""

from __future__ import annotations

import pytest
import torch

from tui_tune.config.presets import builtin_dir, resolve
from tui_tune.train.generation import generate_answers
from tui_tune.train.tasks.causal_lm import load_examples

pytestmark = pytest.mark.xdist_group("train-generation")  # module fixtures load once


def prediction(demo, *overrides: str):
    sets = [f'general.backbone="{demo / "model"}"',
            f'dataset.train_file="{demo / "data" / "train.jsonl"}"', *overrides]
    return resolve(str(builtin_dir() / "demo-tiny.toml"), sets).experiment


@pytest.fixture(scope="module")
def loaded(demo_assets):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_assets / "model")
    model = AutoModelForCausalLM.from_pretrained(demo_assets / "model")
    examples = load_examples(prediction(demo_assets), tokenizer, seed=1).val
    return model, tokenizer, examples


def answers(loaded, demo, *overrides: str, examples=None) -> list[str]:
    model, tokenizer, val = loaded
    pred = prediction(demo, *overrides).prediction
    return generate_answers(model, tokenizer, examples or val[:4], pred, torch.device("cpu"))


def test_stop_strings_end_the_generation(loaded, demo_assets):
    free = answers(loaded, demo_assets, "prediction.max_new_tokens=12",
                   "prediction.min_new_tokens=12")
    text = free[0]
    stop = text[len(text) // 2:len(text) // 2 + 2].strip() or text[-1]
    cut = text[:text.index(stop) + len(stop)]
    stopped = answers(loaded, demo_assets, "prediction.max_new_tokens=12",
                      f"prediction.stop_strings=[{stop!r}]")
    assert len(cut) < len(text)
    assert stopped[0] == cut.strip(), (text, stop, stopped[0])


def test_sampling_follows_top_k_top_p_and_temperature(loaded, demo_assets):
    """400 one-token samples of one prompt, nearly flat (temperature 10): top_k = 0 keeps the
    whole vocabulary, top_k = 20 at most 20 tokens, top_p tiny only the likeliest one."""
    _, _, val = loaded
    same_prompt = [val[0]] * 400

    def distinct(*overrides: str) -> int:
        torch.manual_seed(0)
        return len(set(answers(loaded, demo_assets, "prediction.max_new_tokens=1",
                               "prediction.do_sample=true", "prediction.temperature=10",
                               "prediction.batch_size=400", *overrides,
                               examples=same_prompt)))
    assert distinct("prediction.top_k=0") > 100
    assert distinct("prediction.top_k=20") <= 20
    assert distinct("prediction.top_k=0", "prediction.top_p=0.001") == 1
    assert len(set(answers(loaded, demo_assets, "prediction.max_new_tokens=1",
                           examples=same_prompt[:8]))) == 1  # greedy: do_sample off


def test_max_and_min_new_tokens_set_the_length(loaded, demo_assets):
    """min = max forces the length (the end token is held back): 2 tokens vs 10 tokens."""
    short = answers(loaded, demo_assets, "prediction.max_new_tokens=2",
                    "prediction.min_new_tokens=2")
    long = answers(loaded, demo_assets, "prediction.max_new_tokens=10",
                   "prediction.min_new_tokens=10")
    assert all(len(b) > len(a) + 3 for a, b in zip(short, long)), (short, long)


def test_repetition_penalty_and_beam_search_change_the_answers(loaded, demo_assets):
    """The random demo model repeats itself greedily; a penalty of 10 stops that, and beam
    search (deterministic, like greedy) picks other answers for some prompts."""
    _, _, val = loaded
    fixed = ("prediction.max_new_tokens=12", "prediction.min_new_tokens=12")
    greedy = answers(loaded, demo_assets, *fixed, examples=val[:8])
    penalised = answers(loaded, demo_assets, *fixed, "prediction.repetition_penalty=10",
                        examples=val[:8])
    beams = answers(loaded, demo_assets, *fixed, "prediction.num_beams=4", examples=val[:8])
    assert sum(map(len, map(set, penalised))) > 2 * sum(map(len, map(set, greedy)))
    assert beams != greedy
