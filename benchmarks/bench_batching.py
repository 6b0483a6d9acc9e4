"""Padding waste (pad tokens / all tokens) of each batching option on the demo data.

Batches come from the worker's own code: the epoch plan of `collate.epoch_batches` and the
collators the loop uses, over the examples `data.load_examples` builds from the demo dataset.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import Result

SEED, BATCH = 42, 32


def demo_examples(work: Path):
    from tui_tune.config.presets import builtin_dir, resolve
    from tui_tune.train.demo import prepare
    from tui_tune.train.model import load_tokenizer
    from tui_tune.train.tasks.causal_lm import load_examples

    demo = prepare(work / "demo")
    exp = resolve(str(builtin_dir() / "demo-tiny.toml"),
                  [f'general.backbone="{demo / "model"}"',
                   f'dataset.train_file="{demo / "data" / "train.jsonl"}"']).experiment
    tokenizer = load_tokenizer(exp)
    return exp, tokenizer, load_examples(exp, tokenizer, SEED).train


def waste(examples, collate, group_by_length: bool) -> tuple[float, float]:
    """Over one epoch: the padding fraction, and the fraction of real tokens cut off."""
    from tui_tune.train.collate import epoch_batches, real_tokens

    plan = epoch_batches([len(e) for e in examples], BATCH, SEED, 0, group_by_length, 1)
    padded = real = wanted = 0
    for batch_ids in plan:
        batch = collate([examples[i] for i in batch_ids])
        padded += batch["input_ids"].numel()
        real += real_tokens(batch)
        wanted += sum(len(examples[i]) for i in batch_ids)
    return 1 - real / padded, 1 - real / wanted


class PadToMax:
    """The naive baseline: every row padded to tokenizer.max_length."""

    def __init__(self, pad_id: int, max_length: int):
        from tui_tune.train.collate import PaddedCollator

        self.inner, self.max_length = PaddedCollator(pad_id), max_length

    def __call__(self, examples):
        batch = self.inner(examples)
        import torch

        extra = self.max_length - batch["input_ids"].shape[1]
        return {key: torch.nn.functional.pad(value, (0, extra), value=fill)
                for (key, value), fill in zip(batch.items(), (self.inner.pad_id, -100, 0))}


def run() -> list[Result]:
    from tui_tune.train.collate import PackedCollator, PaddedCollator

    with tempfile.TemporaryDirectory() as tmp:
        exp, tokenizer, examples = demo_examples(Path(tmp))
    pad = tokenizer.pad_token_id
    cases = [
        ("pad to max_length", PadToMax(pad, exp.tokenizer.max_length), False, ""),
        ("pad to longest in batch", PaddedCollator(pad, 1.0), False, ""),
        ("padding quantile 0.5", PaddedCollator(pad, 0.5), False, ""),
        ("pad to longest + group by length", PaddedCollator(pad, 1.0), True, ""),
        ("packing (padding-free)", PackedCollator(), False, "< 5"),
    ]
    results = []
    for label, collate, grouped, goal in cases:
        wasted, cut = waste(examples, collate, grouped)
        detail = f"{len(examples):,} demo examples, batch {BATCH}"
        if cut > 0:
            detail += f"; {cut:.1%} of tokens truncated"
        results.append(Result(f"padding waste, {label}", 100 * wasted, "%", goal, detail))
    return results


def run_gpu() -> list[Result]:
    return run()


if __name__ == "__main__":
    for result in run():
        print(result.row())
