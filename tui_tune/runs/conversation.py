"""A chat with a run's model saved as rows of a dataset file it can be trained on.

One row per turn, in the run's own column names (its system, first prompt, answer and id
columns), each turn's parent id naming the turn before: a preset with
`dataset.parent_id_column` set to the parent column learns the whole conversation, as from
H2O-style chained data. Files go into the run's own `chats/` folder, written whole or not at
all (a temporary name, then a rename).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tui_tune.config.data_groups import Dataset
from tui_tune.rundir import RunDir

DEFAULT_PARENT_COLUMN = "parent_id"  # when the run's preset chains no conversations
DEFAULT_SYSTEM_COLUMN = "system"


@dataclass(frozen=True)
class Turn:
    prompt: str
    answer: str


def conversation_rows(turns: list[Turn], dataset: Dataset, system: str = "",
                      chat_id: str = "chat") -> list[dict]:
    """The rows of one conversation, oldest turn first, chained by their parent ids."""
    prompt_column = dataset.prompt_columns[0]
    parent_column = dataset.parent_id_column or DEFAULT_PARENT_COLUMN
    system_column = dataset.system_column or DEFAULT_SYSTEM_COLUMN
    rows, parent = [], None
    for number, turn in enumerate(turns, 1):
        row_id = f"{chat_id}-{number}"
        row = {dataset.id_column: row_id, parent_column: parent, prompt_column: turn.prompt,
               dataset.answer_column: turn.answer}
        if system and number == 1:  # the system message belongs to the conversation's start
            row[system_column] = system
        rows.append(row)
        parent = row_id
    return rows


def save_conversation(run_dir: Path, turns: list[Turn], dataset: Dataset,
                      system: str = "", now: float | None = None) -> Path:
    """Write the conversation to chats/chat-<time>.jsonl in the run's folder; its path."""
    if not turns:
        raise ValueError("nothing to save: the conversation has no answered turn yet")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    folder = RunDir(run_dir).chats
    folder.mkdir(exist_ok=True)
    path = folder / f"chat-{stamp}.jsonl"
    number = 1
    while path.exists():  # two saves within a second keep both
        number += 1
        path = folder / f"chat-{stamp}-{number}.jsonl"
    rows = conversation_rows(turns, dataset, system, chat_id=path.stem)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    os.replace(partial, path)
    return path
