"""Adapter methods: which weights learn, and how they are saved, loaded back and merged into a
backbone. One module per method family, each with the same four functions:

    apply(model, exp, task) -> model      the backbone made trainable the family's way
    save(model, folder)                   the trainable weights, in their loadable format
    load(model, folder)                   weights that `save` wrote, back into a built model
    merge_into_backbone(model, folder, seen) -> model
                                          a saved run's weights folded into a fresh backbone
                                          (general.pretrained_weights)

and SAVED_AS, the file that marks a folder it saved (None: plain model weights). FAMILIES maps
every adapter.method of the config to its family; a test checks it against the schema.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType

FAMILIES = {
    "lora": "peft_lora", "dora": "peft_lora", "qlora": "peft_lora", "qdora": "peft_lora",
    "ssf": "ssf", "qssf": "ssf",
    "full": "full", "last_layer": "full",
}
FAMILY_FUNCTIONS = ("apply", "save", "load", "merge_into_backbone")


def family_named(name: str) -> ModuleType:
    return import_module(f"{__name__}.{name}")


def family_for(method: str) -> ModuleType:
    return family_named(FAMILIES[method])


def family_of_folder(folder: Path) -> ModuleType:
    """The family that saved `folder` (a run's final/ or checkpoint), by its marker file."""
    for name in dict.fromkeys(FAMILIES.values()):
        family = family_named(name)
        if family.SAVED_AS and (folder / family.SAVED_AS).is_file():
            return family
    return family_named("full")


def apply_method(model, exp):
    """The backbone made trainable as adapter.method says, for the run's problem type."""
    from tui_tune.train.tasks import task_for

    return family_for(exp.adapter.method).apply(model, exp, task_for(exp))


def load_pretrained_weights(model, path_text: str, seen: frozenset = frozenset()):
    """general.pretrained_weights: weights that replace the backbone's, whichever way the run
    that saved them trained (an adapter run's is merged in, so training continues from it)."""
    path = Path(path_text)
    return family_of_folder(path).merge_into_backbone(model, path, seen)
