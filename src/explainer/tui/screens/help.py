"""The help screen (``?``): every key of the screen below it and of the app.

Read from the bindings themselves (with the user's key map from the config applied), so
it cannot drift from what the keys do.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label


def _bindings(node: DOMNode, keymap: dict[str, str]) -> list[Binding]:
    bindings: BindingsMap = node._bindings.copy()
    if keymap:
        bindings.apply_keymap(keymap)
    seen: list[Binding] = []
    for key_bindings in bindings.key_to_bindings.values():
        seen += [b for b in key_bindings if b.action]
    return seen


class HelpScreen(ModalScreen[None]):
    """Every binding of the screen below (and of its focused widget) and of the app."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 96; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen DataTable { height: 1fr; }
    HelpScreen Label { width: 1fr; padding: 0 0 1 0; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "Keys (Esc closes). Ctrl+P opens the command palette: every action by name."
            )
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        table.add_columns("key", "does", "where", "id ([tui.keys])")
        for key, does, where, binding_id in self.rows():
            table.add_row(
                Text(key, style="bold"), does, Text(where, style="dim"), Text(binding_id, "dim")
            )
        table.focus()

    def below(self) -> Screen[object] | None:
        """The screen help was opened over."""
        stack = self.app.screen_stack
        index = stack.index(self) if self in stack else len(stack)
        return stack[index - 1] if index > 0 else None

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(keys, description, where, id) for each binding of the screen below."""
        return self.rows_for(self.below())

    def rows_for(self, screen: Screen[object] | None) -> list[tuple[str, str, str, str]]:
        """(keys, description, where, id) for each binding: the screen's, its focused
        widget's, then the app's. The id is what the config's ``[tui.keys]`` rebinds
        (empty for a binding that has none)."""
        app = screen.app if screen is not None else self.app
        keymap = dict(app._keymap)
        nodes: list[tuple[DOMNode, str]] = []
        if screen is not None:
            nodes.append((screen, "this screen"))
            focused = screen.focused
            if focused is not None:
                nodes.append((focused, type(focused).__name__))
        nodes.append((app, "everywhere"))
        rows: list[tuple[str, str, str, str]] = []
        shown: set[tuple[str, str]] = set()
        for node, where in nodes:
            for binding in _bindings(node, keymap):
                key = app.get_key_display(binding)
                does = binding.description or binding.action
                if (key, does) in shown:
                    continue
                shown.add((key, does))
                rows.append((key, does, where, binding.id or ""))
        return rows
