"""`tui-tune serve-model RUN [--port N] [--host H] [--checkpoint step-N] [--api-key-env VAR]`:
the run's model as an OpenAI-compatible endpoint (train/serve_model.py) in this process, until
Ctrl-C. What can be checked without the model (the weights, the key, the port) is checked
first; once the model is loaded and the port listens, the base URL is printed alone on one
stdout line (`http://HOST:PORT/v1`), so a script can start it with `--port 0` and read where
it went.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from tui_tune.cli.common import fail
from tui_tune.runs.store import RunStore


def api_key_from(variable: str | None) -> tuple[str | None, str | None]:
    """(the key, None) or (None, the one-line problem); no variable: no key asked."""
    if not variable:
        return None, None
    key = os.environ.get(variable, "")
    if not key:
        return None, f"--api-key-env: the environment variable {variable} is not set or empty."
    return key, None


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def weights_problem(run_dir, args: argparse.Namespace) -> str | None:
    """What stops serve-model or chat before the model loads: no such weights; None if fine."""
    from tui_tune.runs.predictions import PredictError, weights_folder

    if args.base:
        return "--base is the backbone alone; it takes no --checkpoint." if args.checkpoint \
            else None
    try:
        weights_folder(run_dir, args.checkpoint)
    except PredictError as error:
        return str(error)
    return None


def cmd_serve_model(args: argparse.Namespace, store: RunStore) -> int:
    run_dir = store.resolve(args.run)
    key, problem = api_key_from(args.api_key_env)
    problem = problem or weights_problem(run_dir, args)
    if problem:
        return fail(problem)
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as error:
        return fail(f"--host {args.host} --port {args.port}: {error.strerror or error}.")
    from tui_tune.train.errors import UserError
    from tui_tune.train.inference import load_quietly

    try:
        loaded = load_quietly(run_dir, args.checkpoint, args.base)
    except UserError as error:
        sock.close()
        return fail(str(error))
    from tui_tune.train.serve_model import serve

    url = base_url(sock)
    print(url, flush=True)
    print(f"tui-tune: serving {loaded.name} at {url} (OpenAI API: /models, /chat/completions, "
          f"/completions{'; API key required' if key else ''}); Ctrl-C stops.",
          file=sys.stderr, flush=True)
    serve(loaded, sock, key)
    return 0
