"""A run's notes and tags, the user's own words about it, kept in its run.json.

One line of text says both: words starting with `#` are tags, the rest is the note
("baseline for the lr sweep #keep #good"). The runs list shows them and its filter finds them.
"""

from __future__ import annotations

from pathlib import Path

from tui_tune.runs.files import update_run_json
from tui_tune.runs.listing import MAX_NOTES, MAX_TAG


def parse_line(text: str) -> tuple[str, tuple[str, ...]]:
    """(notes, tags) from one line; tags keep their order, once each, without `#`."""
    words = text.split()
    tags = tuple(dict.fromkeys(w[1:][:MAX_TAG] for w in words if w.startswith("#") and w != "#"))
    notes = " ".join(w for w in words if not w.startswith("#"))
    return notes[:MAX_NOTES], tags


def as_line(notes: str, tags: tuple[str, ...]) -> str:
    """The line `parse_line` reads back into these notes and tags (the dialog's first text)."""
    return " ".join([notes, *(f"#{t}" for t in tags)] if notes else [f"#{t}" for t in tags])


def save(run_dir: Path, text: str) -> tuple[str, tuple[str, ...]]:
    """Keep the line's notes and tags in run.json (an empty line clears them)."""
    notes, tags = parse_line(text)
    update_run_json(run_dir, notes=notes or None, tags=list(tags) or None)
    return notes, tags
