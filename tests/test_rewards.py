"""grpo's reward functions: the built-ins (exact match after normalisation, numbers as
numbers; the format pattern; the length penalty), a user's 'module:function' from the working
directory, weights, and one-line errors naming the setting for what a user can get wrong."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tui_tune.train.errors import UserError
from tui_tune.train.rewards import build_rewards, same_answer


def experiment(functions, weights=(), pattern=r"^\d+$", max_tokens=10):
    training = SimpleNamespace(reward_functions=list(functions), reward_weights=list(weights),
                               reward_pattern=pattern, max_completion_length=max_tokens)
    return SimpleNamespace(training=training, dataset=SimpleNamespace(answer_column="answer"))


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("completion, answer, same", [
    ("  The   Answer ", "the answer", True),
    ("12", "12.0", True),
    ("1,200", "1200", True),
    ("-3", "-3", True),
    ("12", "13", False),
    ("12 apples", "12", False),
    ("nan", "nan", True),  # not a number to compare: compared as text
    ("", "0", False),
])
def test_exact_match_normalises_and_compares_numbers_as_numbers(completion, answer, same):
    assert same_answer(completion, answer) is same


def test_builtins_and_weights():
    rewards = build_rewards(experiment(["exact_match", "format", "length"], [2.0, 0.5, 1.0]),
                            words)
    rows = [{"answer": "7"}, {"answer": "7"}, {"answer": 7}]
    each, total = rewards.score(["p"] * 3, ["7", "seven", "7 7 7 7 7"], rows)
    assert each[0] == [1.0, 0.0, 0.0]  # the third is not the answer alone
    assert each[1] == [1.0, 0.0, 0.0]
    assert each[2] == [-0.1, -0.1, -0.5]
    assert total == pytest.approx([2.0 + 0.5 - 0.1, -0.1, -0.5])


def test_length_penalty_is_at_most_one():
    rewards = build_rewards(experiment(["length"], max_tokens=2), words)
    assert rewards.score(["p"], ["a b c d"], [{}])[1] == [-1.0]


def test_user_function_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "def shouting(prompts, completions, rows):\n"
        "    return [float(c.isupper()) + len(r['answer']) for c, r in zip(completions, rows)]\n"
        "def wrong_count(prompts, completions, rows):\n    return [1.0]\n"
        "def not_numbers(prompts, completions, rows):\n    return ['a' for c in completions]\n",
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # undone after the test
    rewards = build_rewards(experiment(["my_rewards:shouting", "exact_match"]), words)
    each, total = rewards.score(["p", "p"], ["YES", "no"], [{"answer": "yes"}, {"answer": "ab"}])
    assert each == [[4.0, 2.0], [1.0, 0.0]] and total == [5.0, 2.0]
    for name, message in [("my_rewards:wrong_count", "returned 1 rewards for 2"),
                          ("my_rewards:not_numbers", "must return a list of numbers"),
                          ("my_rewards:missing", "has no function 'missing'"),
                          ("no_such_module_here:f", "cannot import 'no_such_module_here'")]:
        with pytest.raises(UserError, match=message) as err:
            build_rewards(experiment([name]), words).score(["p", "p"], ["a", "b"], [{}, {}])
        assert err.value.setting == "training.reward_functions"


def test_a_bad_pattern_names_its_setting():
    with pytest.raises(UserError, match="not a regular expression") as err:
        build_rewards(experiment(["format"], pattern="("), words)
    assert err.value.setting == "training.reward_pattern"
