"""`tui-tune run | ls | ps | watch | logs | stop | resume | rm | export | sweep | predict |
serve-model | chat`: the arguments of each command and the dispatch to the module that
carries it out.

Runs are detached processes: this CLI only starts, watches and stops them, so Ctrl-C here or a
dropped SSH session never kills training. RUN is a run id or a unique prefix of one.
Exit codes of run, resume, watch and sweep follow the run status: 0 completed (or still running
when detaching), 1 failed, 2 usage or settings error, 3 stopped (also when stopped from the
Ctrl-C prompt), 4 out of memory, 5 died. `stop` exits 0 when the run ended stopped or completed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tui_tune.cli import archive, attach, chat, listing, predict, serve_model, stop, sweep
from tui_tune.cli.common import fail, file_system_error
from tui_tune.config import ConfigError
from tui_tune.runs.control import NotARun
from tui_tune.runs.launch import LaunchError, NothingToResume
from tui_tune.runs.store import RunNotFound, RunStore


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tui-tune {command}", description=_DESCRIPTIONS[command],
                                     epilog=_EXIT_CODES_HELP if command in
                                     ("run", "resume", "watch", "sweep", "stop") else None)
    parser.add_argument("--runs-dir", metavar="DIR",
                        help="where runs live (default ./runs or $TUI_TUNE_RUNS)")
    if command in ("run", "sweep"):
        parser.add_argument("preset", nargs="?" if command == "sweep" else None,
                            help="preset name or path to a .toml file")
        parser.add_argument("--set", dest="overrides", action="append", default=[],
                            metavar="KEY=VALUE", help="override a setting, e.g. training.lr=2e-4")
    if command in ("run", "resume", "sweep"):
        parser.add_argument("--detach", action="store_true",
                            help="start it and return at once (follow later with `watch`)")
    if command == "sweep":
        parser.add_argument("--list", action="store_true", help="list sweeps and their runs")
        parser.add_argument("--continue", dest="continue_sweep", metavar="SWEEP",
                            help="restart the runner of a sweep whose runner was killed")
    if command in ("watch", "logs", "stop", "resume", "rm", "export", "predict",
                   "serve-model", "chat"):
        parser.add_argument("run", metavar="RUN", help="run id, a unique prefix of it or the "
                            "path of a run in the runs folder" +
                            ("; or a sweep id, or a PID or run directory that `tui-tune ps` "
                             "lists" if command == "stop" else ""))
    if command == "logs":
        parser.add_argument("-f", "--follow", action="store_true",
                            help="keep printing new output until the run ends")
    if command == "stop":
        parser.add_argument("--grace", type=float, default=60.0, metavar="SECONDS",
                            help="time the run gets to checkpoint before it is killed (60)")
    if command == "rm":
        parser.add_argument("--force", action="store_true", help="stop a live run, then delete")
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    if command == "export":
        parser.add_argument("-o", "--output", type=Path, help="archive path or folder")
        parser.add_argument("--merged", type=Path, metavar="DIR", help="write a Hugging Face "
                            "model folder: the adapter merged into the backbone")
        parser.add_argument("--adapter", type=Path, metavar="DIR",
                            help="write the adapter alone (LoRA/DoRA: a peft adapter; SSF)")
        parser.add_argument("--checkpoint", metavar="step-N",
                            help="with --merged/--adapter: a complete checkpoint, not final/")
        parser.add_argument("--force", action="store_true",
                            help="with --merged/--adapter: replace a folder that is not empty")
        parser.add_argument("--max-shard-size", default="5GB", metavar="SIZE",
                            help="with --merged: largest safetensors shard (5GB)")
    if command == "predict":
        parser.add_argument("--file", required=True, metavar="F",
                            help="the rows to predict: .csv, .parquet (.pq) or .jsonl with the "
                            "run's prompt columns (answers and labels not needed)")
        parser.add_argument("--out", metavar="O", help="the predictions file (.csv, .parquet "
                            "or .jsonl); default: predictions-<F's name>.csv (.parquet for a "
                            "parquet F) in the run's folder")
        parser.add_argument("--checkpoint", metavar="step-N",
                            help="predict with this checkpoint instead of final/")
        parser.add_argument("--force", action="store_true", help="replace an existing output")
    if command == "serve-model":
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (127.0.0.1: this machine only)")
        parser.add_argument("--port", type=int, default=8000,
                            help="port (8000); 0 picks a free one")
    if command in ("serve-model", "chat"):
        parser.add_argument("--checkpoint", metavar="step-N",
                            help="use this checkpoint instead of final/")
    if command in ("serve-model", "chat"):
        parser.add_argument("--base", action="store_true",
                            help="the run's backbone alone, without what training added (to "
                            "compare answers with the trained model's)")
    if command == "serve-model":
        parser.add_argument("--api-key-env", metavar="VAR", help="require the key held by "
                            "this environment variable (Authorization: Bearer <key>)")
    if command == "chat":
        parser.add_argument("--system", metavar="TEXT", help="the system prompt to start with")
    if command in ("ls", "ps"):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


_EXIT_CODES_HELP = ("exit codes follow the run's final status: 0 completed (or detached), 1 failed, "
                    "2 usage or settings error, 3 stopped, 4 out of memory, 5 died; `stop` exits "
                    "0 once the run is stopped.")
_DESCRIPTIONS = {
    "run": "Launch a run from a preset. Attached by default: a live view; Ctrl-C asks whether "
           "to stop the run or detach from it.",
    "ls": "List runs, newest first.", "watch": "Follow a run's live view, read-only.",
    "logs": "Print a run's console.log.", "stop": "Stop a run (checkpoint, then exit) or a sweep.",
    "resume": "Resume a stopped run from its newest checkpoint.",
    "rm": "Delete a run directory (asks first; -y where no terminal can ask).",
    "ps": "List every tui-tune process on this host with its run directory, also those whose "
          "run directory was deleted; `tui-tune stop PID` ends them.",
    "export": "Pack config, events and final weights into a tar.gz; or, with --merged DIR "
              "and/or --adapter DIR, write the trained model as a Hugging Face folder.",
    "sweep": "Queue and run every combination of a preset's [sweep] grid.",
    "predict": "Predict every row of a file with a run's final/ weights (or a checkpoint): "
               "every input column plus the predictions, written whole or not at all. Runs "
               "in a process of its own, on every GPU when there are several.",
    "serve-model": "Serve a causal LM run's model as an OpenAI-compatible HTTP endpoint "
                   "(/v1/models, /v1/chat/completions, /v1/completions; streaming or not), "
                   "prompts formatted as the run was trained. Prints the base URL on one "
                   "line once it listens; one request at a time; Ctrl-C stops.",
    "chat": "Talk to a causal LM run's model in the shell, prompts formatted as the run was "
            "trained; answers stream as they are written. /help lists the commands (/reset, "
            "/system, /set, /save FILE.jsonl).",
}


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    args = build_parser(command).parse_args(rest)
    store = RunStore(args.runs_dir)
    try:
        return HANDLERS[command](args, store)
    except (RunNotFound, ConfigError, NotARun, NothingToResume) as error:
        return fail(str(error))
    except LaunchError as error:
        return fail("cannot start the run:\n" + "\n".join(f"  {p}" for p in error.problems))
    except BrokenPipeError:
        raise  # the reader went away (`| head`): cli.main ends quietly
    except OSError as error:  # a read-only or full runs folder: one line, not a traceback
        return fail(file_system_error(error, store.root))


HANDLERS = {"run": attach.cmd_run, "resume": attach.cmd_resume, "watch": attach.cmd_watch,
            "ls": listing.cmd_ls, "ps": listing.cmd_ps, "logs": listing.cmd_logs,
            "stop": stop.cmd_stop, "rm": archive.cmd_rm, "export": archive.cmd_export,
            "sweep": sweep.cmd_sweep, "predict": predict.cmd_predict,
            "serve-model": serve_model.cmd_serve_model, "chat": chat.cmd_chat}
