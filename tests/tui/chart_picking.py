"""Picking a chart's metric in the monitor or compare, as a user does (`g`, then Enter)."""

from __future__ import annotations

from tests.tui.conftest import wait_for
from tui_tune.tui.screens.dialogs import ChoiceDialog


async def choose(pilot, app, label: str | None) -> list[str]:
    """Open the picker, check what it offers, pick `label` (None: Escape)."""
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog))
    options = app.screen.query_one("OptionList")
    labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    if label is None:
        await pilot.press("escape")
    else:
        options.highlighted = labels.index(label)
        await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, ChoiceDialog))
    return labels
