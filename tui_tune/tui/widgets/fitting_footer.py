"""A footer that shows only the keys that fit whole (issue 21: 80 columns).

Textual's footer cuts the row of keys wherever the terminal ends ("m Mark for comp"). This
one shows the keys in order while they fit, always keeps the help key (F1 lists every key of
the screen), and hides the rest; a wider terminal shows them again.

Textual's footer also rebuilds all its keys whenever the focus moves (the active bindings
change even where the keys shown do not): in the editor that made each Tab press or typed
character cost 0.4-1 s on a 2-core box. This one rebuilds only when the keys it shows change.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

HELP_ACTION = "app.help"


def shown_bindings(screen: Screen) -> tuple[Any, ...]:
    """What the footer draws of the screen's active bindings (those with show=True)."""
    return tuple((binding.key, binding.key_display, binding.action, binding.description,
                  binding.group, enabled, tooltip)
                 for _, binding, enabled, tooltip in screen.active_bindings.values()
                 if binding.show)


class FittingFooter(Footer):
    """Footer whose keys are never cut mid-word."""

    _drawn: tuple[Any, ...] | None = None  # the bindings of the keys composed last

    def bindings_changed(self, screen: Screen) -> None:
        shown = shown_bindings(screen)
        if self._bindings_ready and shown == self._drawn:
            return  # the same keys: nothing to rebuild
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._drawn = shown
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def on_mount(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        keys = [key for key in self.query(FooterKey) if key.parent is self]
        palette = [key for key in keys if key.has_class("-command-palette")]
        keys = [key for key in keys if key not in palette]
        room = self.size.width - sum(_width(key) for key in palette)
        helper = [key for key in keys if key.action in (HELP_ACTION, "help")]
        room -= sum(_width(key) for key in helper)
        fitting = True
        for key in keys:
            if key in helper:
                continue
            width = _width(key)
            fitting = fitting and width <= room
            if key.display != fitting:
                key.display = fitting
            if fitting:
                room -= width


def _width(key: FooterKey) -> int:
    """The cells a key takes, shown or not (its rendered text holds its padding)."""
    return key.render().cell_len + key.styles.margin.width
