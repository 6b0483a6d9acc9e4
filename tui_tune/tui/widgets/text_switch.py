"""An on/off switch that says its state in text, `[x] on` or `[ ] off`.

Textual's Switch shows its state only by colour and the slider's side: lost on a monochrome
terminal and in copied text. Same widget otherwise (keys, mouse, Switch.Changed)."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.widgets import Switch

WIDTH = len("[x] off")


class TextSwitch(Switch):
    def render(self) -> Text:
        return Text("[x] on" if self.value else "[ ] off",
                    style="bold" if self.value else "")

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return WIDTH
