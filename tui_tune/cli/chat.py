"""`tui-tune chat RUN [--checkpoint step-N] [--system TEXT]`: talk to a causal LM run in the
shell. The model is loaded in this process (train/inference.py, as serve-model does); each
answer is printed as it is written, the prompt formatted as the run was trained (system
prompt, every earlier turn). Lines starting with / are commands (HELP below); Ctrl-C stops
an answer, Ctrl-D or /quit leaves.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

from tui_tune.cli.common import fail
from tui_tune.runs.store import RunStore

HELP = """commands:
  /reset              forget the conversation (the system prompt stays)
  /system TEXT        set the system prompt (/system alone clears it)
  /set NAME VALUE     temperature, top_p, top_k, max_new_tokens, repetition_penalty, or stop
                      (a text, or a JSON list of texts; /set stop [] clears them)
  /settings           show the generation settings
  /save FILE.jsonl    append the conversation as dataset rows (id, parent id, system, prompt,
                      answer) that dataset.parent_id_column trains on
  /help               this list
  /quit               leave (Ctrl-D too)"""
USER, MODEL = "you> ", "model> "


@dataclass
class Conversation:
    system: str = ""
    turns: list[tuple[str, str]] = field(default_factory=list)

    def messages(self, prompt: str) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        for asked, answered in self.turns:
            head += [{"role": "user", "content": asked},
                     {"role": "assistant", "content": answered}]
        return [*head, {"role": "user", "content": prompt}]


def dataset_rows(conv: Conversation, ds) -> list[dict]:
    """The turns as rows with the run's own column names, each naming the one before (the
    chat screen's rows: runs/conversation.py)."""
    from tui_tune.runs.conversation import Turn, conversation_rows

    return conversation_rows([Turn(*turn) for turn in conv.turns], ds, conv.system,
                             chat_id=uuid.uuid4().hex[:8])


def save(conv: Conversation, ds, name: str) -> str:
    path = Path(name).expanduser()
    if path.suffix.lower() != ".jsonl":
        return f"/save: {name} must end in .jsonl (one JSON row a line)."
    if not conv.turns:
        return "/save: nothing to save yet."
    rows = dataset_rows(conv, ds)
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    except OSError as error:
        return f"/save: {path}: {error.strerror or error}."
    return f"saved {len(rows)} rows to {path}"


def set_setting(loaded, text: str) -> str:
    """`/set NAME VALUE`: the new settings, or what is wrong."""
    from tui_tune.train.inference import BadRequest, Settings

    name, _, value = text.partition(" ")
    names = [f.name for f in fields(Settings)]
    if name not in names:
        return f"/set: NAME is one of {', '.join(names)}."
    value = value.strip()
    try:
        parsed = json.loads(value) if name != "stop" or value.startswith("[") else [value]
    except json.JSONDecodeError:
        return f"/set {name}: '{value}' is not a number."
    try:
        loaded.settings = loaded.settings.updated(**{name: parsed})
    except BadRequest as error:
        return f"/set: {error}."
    return show_settings(loaded)


def show_settings(loaded) -> str:
    s = loaded.settings
    return (f"temperature {s.temperature:g}, top_p {s.top_p:g}, top_k {s.top_k}, "
            f"max_new_tokens {s.max_new_tokens}, repetition_penalty {s.repetition_penalty:g}, "
            f"stop {json.dumps(s.stop)}")


def command(loaded, conv: Conversation, line: str) -> str | None:
    """A /command's answer; None for /quit."""
    name, _, rest = line.partition(" ")
    if name in ("/quit", "/exit"):
        return None
    if name == "/reset":
        conv.turns.clear()
        return "the conversation is forgotten."
    if name == "/system":
        conv.system = rest.strip()
        return f"system prompt: {conv.system}" if conv.system else "no system prompt."
    if name == "/set":
        return set_setting(loaded, rest.strip())
    if name == "/settings":
        return show_settings(loaded)
    if name == "/save":
        return save(conv, loaded.exp.dataset, rest.strip()) if rest.strip() else \
            "/save FILE.jsonl: name the file."
    if name == "/help":
        return HELP
    return f"{name}: not a command; /help lists them."


def answer(loaded, conv: Conversation, prompt: str) -> None:
    """Print the answer as it comes; a finished one joins the conversation."""
    from tui_tune.train.inference import BadRequest, Reply

    try:
        ids = loaded.chat_prompt_ids(conv.messages(prompt))
    except BadRequest as error:
        print(f"tui-tune: {error}", file=sys.stderr)
        return
    reply = Reply()
    pieces = loaded.stream(ids, loaded.settings, reply)
    print(MODEL, end="", flush=True)
    try:
        for piece in pieces:
            print(piece, end="", flush=True)
    except KeyboardInterrupt:
        pieces.close()
        print(" [stopped; not kept]", flush=True)
        return
    print(flush=True)
    conv.turns.append((prompt, reply.text.strip()))


def talk(loaded, conv: Conversation) -> int:
    if sys.stdin.isatty():
        import readline  # noqa: F401 - line editing and history for input()
    while True:
        try:
            line = input(USER).strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line:
            continue
        if line.startswith("/"):
            said = command(loaded, conv, line)
            if said is None:
                return 0
            print(said, flush=True)
            continue
        answer(loaded, conv, line)


def cmd_chat(args: argparse.Namespace, store: RunStore) -> int:
    from tui_tune.cli.serve_model import weights_problem

    run_dir = store.resolve(args.run)
    problem = weights_problem(run_dir, args)
    if problem:
        return fail(problem)
    from tui_tune.train.errors import UserError
    from tui_tune.train.inference import load_quietly

    try:
        loaded = load_quietly(run_dir, args.checkpoint, args.base)
    except UserError as error:
        return fail(str(error))
    print(f"tui-tune: chatting with {loaded.name}; /help lists the commands, Ctrl-D leaves.",
          file=sys.stderr, flush=True)
    return talk(loaded, Conversation(system=args.system or ""))
