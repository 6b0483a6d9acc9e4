"""`tui-tune preset ...`: list, show, validate, diff, new, import, schema."""

from __future__ import annotations

import argparse
import json
import sys

from tui_tune.config import ConfigError, Experiment
from tui_tune.config.diff import diff_experiments
from tui_tune.config.foreign_import import Imported, import_preset, report_lines
from tui_tune.config.presets import (
    every_problem,
    experiment_toml,
    list_presets,
    new_preset,
    resolve,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tui-tune preset", description="Manage presets.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="built-in, user and local presets")
    show = sub.add_parser("show", help="print the fully resolved experiment as TOML")
    show.add_argument("name", help="preset name or .toml path")
    show.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a setting, e.g. training.lr=2e-4 (repeatable)")
    validate = sub.add_parser("validate", help="check preset files and the data and backbone "
                              "files they name; lists every problem")
    validate.add_argument("files", nargs="+", metavar="FILE")
    diff = sub.add_parser("diff", help="settings that differ between two presets")
    diff.add_argument("a")
    diff.add_argument("b")
    new = sub.add_parser("new", help="write ./presets/NAME.toml holding only differences")
    new.add_argument("name")
    new.add_argument("--from", dest="base", required=True, metavar="BASE")
    new.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    imp = sub.add_parser("import", help="write ./presets/NAME.toml from a TOML preset or an "
                         "H2O LLM Studio, axolotl or LLaMA-Factory YAML config; lists every "
                         "setting it could not map")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--name", help="preset name (default: the file's name)")
    imp.add_argument("--force", action="store_true", help="overwrite an existing file")
    sub.add_parser("schema", help="print the JSON Schema of an experiment")
    return parser


def _list() -> int:
    winners: set[str] = set()
    print(f"{'NAME':<24} {'SOURCE':<9} PATH")
    for info in list_presets():
        shadowed = " (shadowed)" if info.name in winners else ""
        winners.add(info.name)
        print(f"{info.name:<24} {info.source:<9} {info.path}{shadowed}")
    return 0


def _validate(files: list[str]) -> int:
    """Settings, then what the worker would refuse in the files they name (data, backbone);
    settings that are ignored are warnings and do not fail."""
    from tui_tune.runs.preflight import file_problems, layout_notes

    failed = 0
    for name in files:
        try:
            resolved = resolve(name)
        except ConfigError as error:
            failed += 1
            try:  # every problem of the file in one pass, not just the first kind found
                problems = every_problem(name) or error.problems
            except ConfigError:
                problems = error.problems
            for problem in problems:
                print(f"ERR {problem}")
            continue
        problems = file_problems(resolved.experiment)
        for problem in problems:
            print(f"ERR {name}: {problem}")
        failed += bool(problems)
        if not problems:
            print(f"ok  {name}")
            for note in layout_notes(resolved.experiment):
                print(f"NOTE {note}")
        for warning in resolved.warnings:
            print(f"WARN {warning}")
    return 1 if failed else 0


def print_warnings(warnings: list) -> None:
    """Settings that do not apply and are ignored, on stderr (stdout may be TOML)."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def print_import(imported: Imported) -> None:
    """What was read as what, then every setting that was not mapped, with its value."""
    print("\n".join(report_lines(imported)))


def print_layout_notes(experiment: Experiment) -> None:
    """How dataset.format auto reads the data files, when not as prompt/answer columns."""
    from tui_tune.runs.preflight import layout_notes

    for note in layout_notes(experiment):
        print(f"note: {note}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if args.action == "show":
        resolved = resolve(args.name, args.set)
        print_warnings(resolved.warnings)
        sys.stdout.write(experiment_toml(resolved.experiment))
    elif args.action == "validate":
        return _validate(args.files)
    elif args.action == "diff":
        changes = diff_experiments(resolve(args.a).experiment, resolve(args.b).experiment)
        for change in changes:
            print(change)
        if not changes:
            print("no differences")
    elif args.action == "new":
        print(f"wrote {new_preset(args.name, args.base, args.set, force=args.force)}")
    elif args.action == "import":
        print_import(import_preset(args.file, args.name, force=args.force))
    elif args.action == "schema":
        print(json.dumps(Experiment.model_json_schema(), indent=2))
    return 0


def main(argv: list[str]) -> int:
    """argv starts with the command word ('preset')."""
    args = build_parser().parse_args(argv[1:])
    try:
        return run(args)
    except ConfigError as error:
        print(f"error:\n{error}", file=sys.stderr)
        return 2
