"""`tui-tune predict RUN --file F [--out O] [--checkpoint step-N] [--force]`: a run's model
predicts every row of a file, in a process of its own (runs/predict_launch.py: through
accelerate on every GPU when there are several), whose progress line and one-line errors go
to stderr. What can be checked without the model is checked here first, with the messages the
process would give; the output appears whole (O.partial, then renamed) or not at all.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from pathlib import Path

from tui_tune.cli.common import fail
from tui_tune.runs.store import RunStore

INTERRUPTED = 130
CHILD_GRACE_S = 30  # after Ctrl-C, the time the process gets to remove its partial file


def cmd_predict(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.monitor.gpu import gpu_count
    from tui_tune.runs.launch import load_experiment
    from tui_tune.runs.predict_launch import predict_argv
    from tui_tune.runs.predictions import (
        PredictError,
        check_output,
        default_output,
        partial_path,
        read_input,
        weights_folder,
    )

    run_dir = store.resolve(args.run)
    file = Path(args.file).expanduser().absolute()
    out = Path(args.out).expanduser().absolute() if args.out else \
        default_output(run_dir, file, args.checkpoint)
    exp = load_experiment(run_dir)
    try:
        weights_folder(run_dir, args.checkpoint)
        check_output(out, args.force)
        read_input(file, exp.dataset, exp.general.problem_type, "--file")
    except PredictError as error:
        return fail(str(error))
    argv = predict_argv(run_dir, file, out, args.checkpoint, args.force, gpu_count(),
                        exp.environment.mixed_precision)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:  # the process got the Ctrl-C too: let it clean up
        try:
            process.wait(timeout=CHILD_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        code = INTERRUPTED
    if code != 0:
        with contextlib.suppress(FileNotFoundError):
            partial_path(out).unlink()  # a process killed outright leaves it behind
    if code < 0:  # ended by a signal before it could say so
        print("tui-tune: predict interrupted; no predictions written.", file=sys.stderr)
        return INTERRUPTED
    return code
