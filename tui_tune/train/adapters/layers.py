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


def last_block_prefix(model) -> str:
    indices = {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        for n, part in enumerate(parts[:-1]):
            if part.isdigit() and parts[n - 1] in ("layers", "h", "blocks", "layer"):
                indices[".".join(parts[:n])] = max(indices.get(".".join(parts[:n]), -1), int(part))
    if not indices:
        raise UserError("cannot find the model's blocks; use method full with freeze_layers.",
                        "adapter.method")
    stem, last = max(indices.items(), key=lambda kv: kv[1])
    return f"{stem}.{last}."
