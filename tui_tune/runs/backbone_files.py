"""What a local backbone directory must hold for the worker to load it, read from its files.

The app cannot import transformers, so this looks at the files transformers reads: config.json
for the model, and the chat template where AutoTokenizer finds one (tokenizer_config.json,
chat_template.jinja, additional_chat_templates/default.jinja). A hub id is not checked here:
its files are only on the hub.
"""

from __future__ import annotations

import json
from pathlib import Path

from tui_tune.config import Experiment, Problem


def backbone_problems(exp: Experiment) -> list[Problem]:
    """Why the worker would refuse this local backbone (empty for a hub id or a good folder)."""
    folder = Path(exp.general.backbone).expanduser()
    if not folder.is_dir():
        return []
    if not (folder / "config.json").is_file():
        return [Problem("general.backbone", f"{folder} has no config.json, so it is not a model "
                        "saved with save_pretrained; point it at the folder holding config.json.")]
    if exp.dataset.use_chat_template and not has_chat_template(folder):
        return [Problem("dataset.use_chat_template", f"the tokenizer in {folder} has no chat "
                        "template (none in tokenizer_config.json, no chat_template.jinja): turn "
                        "use_chat_template off to use the text markers, or pick a chat model.")]
    return []


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file():
        return True
    if (folder / "additional_chat_templates" / "default.jinja").is_file():
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))
