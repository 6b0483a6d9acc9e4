"""Run notes and tags (`a` on the runs screen; kept in run.json, shown in the list) and the
runs list's filter box (`/`: by name, status, preset, notes or #tag) (issue 21 minor 22)."""

from __future__ import annotations

import json

import pytest

from tests.tui.conftest import FIXED_T, fixed_events, wait_for
from tui_tune.runs.notes import parse_line
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.runs import RunsScreen


def failed() -> list[dict]:
    events = fixed_events(steps=5, status=None)
    return events + [{"v": 1, "t": FIXED_T + 6, "kind": "end", "status": "failed",
                      "error_type": "ValueError", "message": "boom"}]


def shown_runs(runs: RunsScreen) -> list[str]:
    return [row.run_id for row in runs.rows]


def test_one_line_holds_notes_and_tags():
    assert parse_line("baseline  for the lr sweep #keep #good #keep") == (
        "baseline for the lr sweep", ("keep", "good"))
    assert parse_line("") == ("", ())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_notes_and_tags_show_and_the_filter_finds_runs(make_run, size):
    tiny = make_run("20260101-000200-demo-tiny")
    make_run("20260101-000100-demo-classify", preset="demo-classify")
    make_run("20260101-000000-demo-tiny", events=failed())
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: len(runs.summaries) == 3 and len(runs._detailed) == 3)
        await pilot.press("a")
        await pilot.press(*"baseline run #keep", "enter")
        await wait_for(pilot, lambda: runs.rows[0].tags == ("keep",))
        info = json.loads((tiny / "run.json").read_text())
        assert info["notes"] == "baseline run" and info["tags"] == ["keep"]
        table = runs.query_one("#runs-table")
        assert "#keep" in table.get_cell_at((0, 1)).plain
        detail = str(runs.query_one("#runs-detail").render())
        assert "#keep" in detail and "baseline run" in detail

        await pilot.press("slash", *"#keep")
        await wait_for(pilot, lambda: shown_runs(runs) == [tiny.name])
        assert "1 of 3" in str(runs.query_one("#runs-title").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(runs.rows) == 3)
        assert not runs.query_one("#runs-filter").display

        for query, expected in (("failed", ["20260101-000000-demo-tiny"]),
                                ("classify", ["20260101-000100-demo-classify"]),
                                ("tiny stopped", [tiny.name]), ("nothing-like-it", [])):
            await pilot.press("slash", *query)
            await wait_for(pilot, lambda want=expected: shown_runs(runs) == want)
            if not expected:
                assert "No run matches" in str(runs.query_one("#runs-empty").render())
            await pilot.press("escape")
            await wait_for(pilot, lambda: len(runs.rows) == 3)

        await pilot.press("a", "ctrl+u", "enter")  # an empty line clears them
        await wait_for(pilot, lambda: runs.rows[0].tags == () and not runs.rows[0].notes)
        assert "tags" not in json.loads((tiny / "run.json").read_text())
