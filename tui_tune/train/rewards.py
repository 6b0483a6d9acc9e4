"""grpo's reward functions: what scores each sampled completion.

Built-ins (config.problem_types.BUILTIN_REWARDS): `exact_match` (the row's answer column,
both normalised: stripped, lowercased, spaces collapsed; two numbers compare as numbers),
`format` (training.reward_pattern found by re.search) and `length` (minus the completion's
share of max_completion_length, in tokens). Any other name is 'module:function', imported with
the working directory first on the path, called as function(prompts, completions, rows) with
one prompt, completion and row (a dict of the row's columns) per completion, and returning one
float (or int, or bool) each. No torch here: rewards are plain Python.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module

from tui_tune.train.errors import UserError

SETTING = "training.reward_functions"
RewardFn = Callable[[list[str], list[str], list[dict]], Sequence[float]]


def normalise(text: object) -> str:
    return " ".join(str(text).strip().lower().split())


def number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def same_answer(completion: str, answer: object) -> bool:
    given, expected = normalise(completion), normalise(answer)
    a, b = number(given), number(expected)
    if a is not None and b is not None:
        return a == b
    return given == expected


def exact_match(answer_column: str) -> RewardFn:
    def reward(prompts, completions, rows):
        return [float(same_answer(c, row.get(answer_column, ""))) for c, row in
                zip(completions, rows)]
    return reward


def format_reward(pattern: str) -> RewardFn:
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise UserError(f"is not a regular expression: {err}.", "training.reward_pattern") \
            from None

    def reward(prompts, completions, rows):
        return [float(compiled.search(c) is not None) for c in completions]
    return reward


def length_penalty(count_tokens: Callable[[str], int], max_tokens: int) -> RewardFn:
    def reward(prompts, completions, rows):
        return [-min(1.0, count_tokens(c) / max_tokens) for c in completions]
    return reward


def user_function(name: str) -> RewardFn:
    """'module:function' from the working directory (where tui-tune was started)."""
    module_name, _, attr = name.partition(":")
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        module = import_module(module_name.strip())
    except Exception as err:  # noqa: BLE001 (a user's module: any error is theirs to see)
        raise UserError(f"cannot import '{module_name}' from {here}: "
                        f"{type(err).__name__}: {err}.", SETTING) from None
    function = getattr(module, attr.strip(), None)
    if not callable(function):
        raise UserError(f"'{module_name}' has no function '{attr}'.", SETTING)
    return function


@dataclass
class Rewards:
    """The named functions with their weights; `score` gives each function's rewards and the
    weighted total per completion."""
    names: list[str]
    functions: list[RewardFn]
    weights: list[float]

    def score(self, prompts: list[str], completions: list[str],
              rows: list[dict]) -> tuple[list[list[float]], list[float]]:
        each = [checked(name, function(prompts, completions, rows), len(completions))
                for name, function in zip(self.names, self.functions)]
        total = [sum(w * values[k] for w, values in zip(self.weights, each))
                 for k in range(len(completions))]
        return each, total


def checked(name: str, values, count: int) -> list[float]:
    """A function's answer as floats, one per completion, or a one-line error naming it."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise UserError(f"'{name}' must return a list of numbers, one per completion; it "
                        f"returned {type(values).__name__}.", SETTING) from None
    if len(out) != count:
        raise UserError(f"'{name}' returned {len(out)} rewards for {count} completions.",
                        SETTING)
    if not all(math.isfinite(v) for v in out):
        raise UserError(f"'{name}' returned a reward that is not a finite number.", SETTING)
    return out


def build_rewards(exp, count_tokens: Callable[[str], int]) -> Rewards:
    t = exp.training
    functions = []
    for name in t.reward_functions:
        if name == "exact_match":
            functions.append(exact_match(exp.dataset.answer_column))
        elif name == "format":
            functions.append(format_reward(t.reward_pattern))
        elif name == "length":
            functions.append(length_penalty(count_tokens, t.max_completion_length))
        else:
            functions.append(user_function(name))
    weights = list(t.reward_weights) or [1.0] * len(functions)
    return Rewards(list(t.reward_functions), functions, weights)
