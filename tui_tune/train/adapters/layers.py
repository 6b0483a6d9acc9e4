"""Finding layers by the names settings give (target, freeze and unfreeze patterns)."""

from __future__ import annotations

from tui_tune.train.errors import UserError


def check_patterns(model, patterns: list[str], setting: str, suffix: bool = False) -> None:
    """A layer pattern that matches nothing would make its switch silently do nothing.
    peft matches module names by suffix; our own freezing by substring of parameter names."""
    names = [n for n, _ in model.named_modules() if n] + [n for n, _ in model.named_parameters()]
    for pattern in patterns:
        if suffix:
            found = any(n == pattern or n.endswith("." + pattern) for n in names)
        else:
            found = any(pattern in n for n in names)
        if not found:
            leaves = sorted({n.rsplit(".", 1)[-1] for n, _ in model.named_modules()
                             if n and not n.rsplit(".", 1)[-1].isdigit()})
            how = "ends a layer name" if suffix else "is part of a layer name"
            raise UserError(f"'{pattern}' matches no layer of the model (it must be a name that "
                            f"{how}); its layers are called {', '.join(leaves[:24])}.", setting)


def set_trainable(model, patterns: list[str], trainable: bool) -> None:
    """requires_grad of every parameter whose name holds one of the patterns."""
    for name, param in model.named_parameters():
        if any(pattern in name for pattern in patterns):
            param.requires_grad = trainable


def last_block_parameters(model) -> set[str]:
    """The parameters last_layer trains: the last block of the stack that runs last, and every
    parameter registered after it (the final norm, a pooler, the head).

    The stacks are the outermost ModuleLists (Llama's `model.layers`, GPT-2's `h`, BERT's
    `encoder.layer`, T5's `decoder.block` whose blocks hold `layer` lists of their own, a VLM's
    language model after its vision tower): the one registered last runs nearest the head."""
    from torch import nn

    stacks = [(name, module) for name, module in model.named_modules()
              if isinstance(module, nn.ModuleList) and len(module) > 0]
    outer = [(name, module) for name, module in stacks
             if not any(name.startswith(other + ".") for other, _ in stacks)]
    if not outer:
        raise UserError("cannot find the model's blocks; use method full with freeze_layers.",
                        "adapter.method")
    stem, stack = outer[-1]
    last = f"{stem}.{len(stack) - 1}." if stem else f"{len(stack) - 1}."
    names = [name for name, _ in model.named_parameters()]
    start = next(n for n, name in enumerate(names) if name.startswith(last))
    # registered late but run first (BART's layernorm_embedding): not part of the top
    return {name for name in names[start:] if "embed" not in name}
