"""A footer that shows only the keys that fit whole (issue 21: 80 columns).

Textual's footer cuts the row of keys wherever the terminal ends ("m Mark for comp"). This
one shows the keys in order while they fit, always keeps the help key (F1 lists every key of
the screen), and hides the rest; a wider terminal shows them again.
"""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

HELP_ACTION = "app.help"


class FittingFooter(Footer):
    """Footer whose keys are never cut mid-word."""

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
