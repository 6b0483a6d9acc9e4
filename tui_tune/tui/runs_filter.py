"""The runs list's filter: which runs a typed query keeps.

Every word of the query must appear (any case) in what the row says of the run: its id, name,
status, preset, swept values, notes or tags (`#keep` finds the tag keep). A sweep's summary row
is rebuilt from the members that match, so it is never matched itself.
"""

from __future__ import annotations

from tui_tune.runs.listing import RunSummary, swept_text


def haystack(row: RunSummary) -> str:
    """What a query's words are looked for in, lowercased."""
    return " ".join([row.run_id, row.name, row.shown_status, row.preset, swept_text(row.swept),
                     row.notes, *(f"#{tag}" for tag in row.tags)]).lower()


def matches(row: RunSummary, query: str) -> bool:
    return all(word in haystack(row) for word in query.lower().split())


def kept(rows: list[RunSummary], query: str) -> list[RunSummary]:
    """The rows the query keeps, in their order (all of them for an empty query)."""
    return [row for row in rows if matches(row, query)] if query.strip() else list(rows)
