"""The worker's seams: every problem type the config accepts has a task, every adapter method a
family, and each of them has the whole interface the loop, checkpoints and final/ call."""

from __future__ import annotations

import inspect

import pytest
import transformers
from peft import TaskType

from tui_tune.config.model_groups import ADAPTER_METHODS
from tui_tune.config.problem_types import SUPPORTED_PROBLEM_TYPES
from tui_tune.train.adapters import (
    FAMILIES,
    FAMILY_FUNCTIONS,
    family_for,
    family_named,
    family_of_folder,
)
from tui_tune.train.errors import UserError
from tui_tune.train.tasks import TASKS, Task, task_named


def test_every_supported_problem_type_has_a_task_and_no_task_is_unreachable():
    assert set(TASKS) == set(SUPPORTED_PROBLEM_TYPES)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_task_implements_the_interface(name):
    task = task_named(name)
    assert task.name == name
    assert hasattr(transformers, task.auto_model), task.auto_model
    assert task.peft_task_type in {t.value for t in TaskType}
    assert task.head_modules
    for method in ("load_data", "train_collator", "loss", "evaluate", "predict"):
        assert getattr(type(task), method) is not getattr(Task, method), f"{name}.{method}"


def test_an_unknown_problem_type_is_a_user_error_naming_the_setting():
    with pytest.raises(UserError) as caught:
        task_named("telepathy")
    assert caught.value.setting == "general.problem_type"


def test_every_adapter_method_has_a_family_with_the_whole_interface():
    assert set(FAMILIES) == set(ADAPTER_METHODS)
    for method in ADAPTER_METHODS:
        family = family_for(method)
        assert hasattr(family, "SAVED_AS")
        for function in FAMILY_FUNCTIONS:
            assert inspect.isfunction(getattr(family, function, None)), f"{method}: {function}"


def test_a_saved_folder_is_recognised_by_the_family_that_saved_it(tmp_path):
    for name in dict.fromkeys(FAMILIES.values()):
        family, folder = family_named(name), tmp_path / name
        folder.mkdir()
        if family.SAVED_AS:
            (folder / family.SAVED_AS).write_text("{}")
        assert family_of_folder(folder) is family
