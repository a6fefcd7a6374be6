"""The connection dialog: a DSN (with the ones used before), a password, a test.

The password is typed into a password field and only ever merged into the DSN handed
back (in memory); the history the app keeps has it removed
(:func:`explainer.tui.session.strip_password`). A failed test shows the one line
:func:`explainer.db.connection.connect` makes of the server's reason.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.worker import get_current_worker

from explainer.errors import ExplainerError
from explainer.tui.session import Workbench, with_password


class ConnectScreen(ModalScreen[str | None]):
    """Ask for a DSN and a password; dismisses with the DSN (password merged) or None."""

    DEFAULT_CSS = """
    ConnectScreen { align: center middle; }
    ConnectScreen > Vertical {
        width: 90; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ConnectScreen #history { height: auto; max-height: 8; margin-bottom: 1; }
    ConnectScreen #result { height: auto; margin: 1 0; }
    ConnectScreen #result.error { color: $error; }
    ConnectScreen #result.ok { color: $success; }
    ConnectScreen Horizontal { height: auto; align-horizontal: right; }
    ConnectScreen Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="connect.cancel"),
        Binding("ctrl+t", "test", "Test", id="connect.test", priority=True),
    ]

    def __init__(self, history: list[str], dsn: str | None = None) -> None:
        super().__init__()
        self.history = list(history)
        self.initial = dsn if dsn is not None else (history[0] if history else "")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Connect to PostgreSQL[/b]")
            yield Label(
                "libpq URI, key=value string or SQLAlchemy URL; empty = the PG* environment",
                classes="hint",
            )
            yield Input(
                self.initial,
                placeholder="postgresql://user@host:5432/dbname",
                id="dsn",
                suggester=SuggestFromList(self.history, case_sensitive=False),
            )
            if self.history:
                yield Label("used before:")
                yield OptionList(*(Text(dsn) for dsn in self.history), id="history")
            yield Input(
                placeholder="password (optional: never stored; ~/.pgpass works too)",
                password=True,
                id="password",
            )
            yield Static("", id="result")
            with Horizontal():
                yield Button("Test", id="test")
                yield Button("Connect", id="connect", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#dsn", Input).focus()

    # -- choosing ----------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#history")
    def _history_chosen(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#dsn", Input).value = str(event.option.prompt)
        self.query_one("#password", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#connect")
    def _connect_requested(self) -> None:
        self._check(dismiss=True)

    @on(Button.Pressed, "#test")
    def action_test(self) -> None:
        self._check(dismiss=False)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    # -- the test ----------------------------------------------------------------------

    def chosen_dsn(self) -> str | None:
        """The DSN typed (None: the libpq environment), with the password if one was typed."""
        dsn = self.query_one("#dsn", Input).value.strip() or None
        return with_password(dsn, self.query_one("#password", Input).value)

    def _check(self, *, dismiss: bool) -> None:
        self._show("connecting...", "")
        try:
            dsn = self.chosen_dsn()
        except ExplainerError as exc:
            self._show(str(exc), "error")
            return
        self._test(dsn, dismiss)

    @work(thread=True, exclusive=True, group="connect-test")
    def _test(self, dsn: str | None, dismiss: bool) -> None:
        try:
            message = Workbench.test_connection(dsn)
        except ExplainerError as exc:
            self.app.call_from_thread(self._show, str(exc), "error")
            return
        except Exception as exc:  # the dialog must survive anything the driver raises
            self.app.call_from_thread(self._show, f"{type(exc).__name__}: {exc}", "error")
            return
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._show, message, "ok")
        if dismiss:
            # "" (not None, which means "closed"): the libpq environment.
            self.app.call_from_thread(self.dismiss, dsn or "")

    def _show(self, message: str, kind: str) -> None:
        result = self.query_one("#result", Static)
        result.update(Text(message))
        result.set_classes(kind)
