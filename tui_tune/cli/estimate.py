"""`tui-tune estimate PRESET [--set KEY=VALUE ...] [--json]`: will it fit, and how long will
it take, before anything is launched (runs/estimate/)."""

from __future__ import annotations

import argparse
import json
import sys

from tui_tune.cli.common import fail
from tui_tune.display import duration, fit_lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-tune estimate", description="Peak GPU memory per GPU (broken down), whether "
        "it fits each visible GPU and what would make it fit, and the time the run takes. "
        "Needs only the backbone's config.json (a local folder or the Hugging Face cache).")
    parser.add_argument("preset", help="preset name or path to a .toml file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a setting, e.g. training.batch_size=4")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    parser.add_argument("--gpu-gib", type=float, metavar="GIB",
                        help="check against a GPU of this size instead of the visible ones")
    parser.add_argument("--gpus", type=int, metavar="N",
                        help="processes (GPUs) to estimate for; default: as the launch would")
    parser.add_argument("--runs-dir", metavar="DIR",
                        help="where earlier runs live, for their tokens/s (default ./runs)")
    return parser


def main(argv: list[str]) -> int:
    from tui_tune.cli.preset import print_warnings
    from tui_tune.config import ConfigError
    from tui_tune.config.presets import resolve
    from tui_tune.monitor.gpu import gpu_unavailable_reason, sample_gpus
    from tui_tune.runs.estimate import ShapeError, estimate_run
    from tui_tune.runs.listing import runs_root

    args = build_parser().parse_args(argv[1:])
    try:
        resolved = resolve(args.preset, args.overrides)
    except ConfigError as error:
        print(f"error:\n{error}", file=sys.stderr)
        return 2
    print_warnings(resolved.warnings)
    readings = [] if args.gpu_gib else sample_gpus()
    try:
        result = estimate_run(resolved.experiment, readings,
                              "" if readings or args.gpu_gib else gpu_unavailable_reason(),
                              args.gpu_gib, runs_root(args.runs_dir), args.gpus)
    except ShapeError as error:
        return fail(str(error))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_report(result)
    return 0


def print_report(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    shape, memory = result.shape, result.memory
    s = memory.settings
    console.print(f"[b]{count_text(shape.total_params)} parameters[/b] ({shape.layers} blocks, "
                  f"hidden {shape.hidden}, vocab {shape.vocab}) from {shape.source}")
    console.print(f"{s.method}, {s.backbone_dtype}, batch {s.batch_size} x {s.max_length} "
                  f"tokens, {s.world_size} GPU{'s' if s.world_size > 1 else ''} "
                  f"({s.backend}), gradient checkpointing "
                  f"{'on' if s.gradient_checkpointing else 'off'}, {s.optimizer}")
    table = Table(title=f"Peak memory per GPU ({memory.phase})", title_justify="left")
    table.add_column("part")
    table.add_column("GiB", justify="right")
    table.add_column("how")
    for part in memory.parts:
        table.add_row(part.name, f"{part.gib:.2f}", part.note)
    table.add_row("[b]peak allocated[/b]", f"[b]{memory.peak_gib:.2f}[/b]",
                  "torch's max_memory_allocated (the runs' mem_peak_gib)")
    for part in memory.overhead:
        table.add_row(part.name, f"{part.gib:.2f}", part.note)
    table.add_row("[b]needed on the GPU[/b]", f"[b]{memory.total_gib:.2f}[/b]", "")
    console.print(table)
    for note in memory.notes:
        console.print(f"note: {note}")
    if result.no_gpu:
        console.print(f"{result.no_gpu} (--gpu-gib N checks against a GPU of N GiB)")
    for line in fit_lines(result):
        console.print(line)
    if result.changes:
        console.print("changes that make it fit, largest saving first:")
        for change in result.changes:
            mark = "fits" if change.fits else (
                "still too big" if change.combined else "not enough alone")
            console.print(f"  --set {change.text}  -> {change.total_gib:.1f} GiB "
                          f"(-{change.saving_gib:.1f}; {mark})")
    _print_time(console, result)


def count_text(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _print_time(console, result) -> None:
    if result.time is None:
        console.print(f"time: {result.time_error}")
        return
    t = result.time
    fast, slow = t.seconds
    console.print(f"data: {t.data.rows:,} rows, {t.data.train_rows:,} for training, about "
                  f"{t.data.mean_tokens:,.0f} tokens a row ({t.data.method}); "
                  f"{t.data.truncated:,} rows longer than max_length")
    console.print(f"time: {t.steps:,} steps ({t.steps_per_epoch:,} per epoch), "
                  f"{t.tokens:,.0f} tokens at {t.speed.low:,.0f}-{t.speed.high:,.0f} tokens/s "
                  f"({t.speed.source}): [b]{duration(fast)} to {duration(slow)}[/b]")
