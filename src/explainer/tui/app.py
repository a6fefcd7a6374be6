"""The workbench app: the screens, the app-wide keys and actions, and the workers.

Every database call runs in a thread worker (:meth:`ExplainerApp._analyze`,
:meth:`ExplainerApp._cancel`), so the UI stays responsive during a slow statement; Esc
cancels it on the server. Whatever a worker raises ends as a notification: the app never
exits with a traceback because a database went away.

Actions every screen may trigger (``self.app.run_action("app.<name>")`` or a binding):
``paste``, ``export``, ``help``, ``connect``, ``open_query('<query id>')``, ``analyze``,
``open_log``, ``cancel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, ClassVar

import psycopg
from textual import on, work
from textual.actions import SkipAction
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message

from explainer.config import Settings
from explainer.errors import ConnectionFailed, ExplainerError
from explainer.tui.screens.help import HelpScreen
from explainer.tui.screens.workload import OpenLogScreen, WorkloadScreen
from explainer.tui.session import Progress, Workbench, load_history, remember, strip_password
from explainer.units import one_line

if TYPE_CHECKING:
    from explainer.report import QueryReport
    from explainer.tui.screens.paste import PasteScreen

# The other screens (query, compare, paste, export, connect) are imported by the actions
# that open them: they pull in the plan tree, the renderers and the export, which the
# first screen does not need, and the workbench must paint it in under a second.


def error_line(exc: BaseException) -> str:
    """One line for a notification: the message of an explainer error, the first line of
    anything else (a driver error, a bug) with its type, never a traceback."""
    if isinstance(exc, ExplainerError):
        return str(exc)
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, psycopg.Error):
        return f"database error: {first or type(exc).__name__}"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class WorkbenchCommands(Provider):
    """The command palette (Ctrl+P): every key binding of the screen and the app by its
    description, and every analyzed query by its SQL."""

    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        assert isinstance(app, ExplainerApp)
        commands: list[tuple[str, str, object]] = []
        seen: set[str] = set()
        for node in (self.screen, app):
            for binding in node._bindings.key_to_bindings.values():
                for b in binding:
                    if not b.description or b.description in seen:
                        continue
                    seen.add(b.description)
                    key = app.get_key_display(b)
                    run = partial(app.run_action, b.action, node)
                    commands.append((b.description, f"{key}: {b.action}", run))
        for entry in app.workbench.entries.values():
            commands.append(
                (
                    f"Open query {one_line(entry.sql, 60)}",
                    f"{entry.calls:,} calls · {len(entry.findings)} findings",
                    partial(app.open_query, entry.id),
                )
            )
        return commands

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)  # type: ignore[arg-type]


class ExplainerApp(App[None]):
    """The terminal workbench: workload, query, paste, compare, export, connect, help."""

    TITLE = "explainer"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("p", "paste", "Paste", id="paste"),
        Binding("e", "export", "Export", id="export"),
        Binding("c", "connect", "Connect", id="connect"),
        # Priority: Esc cancels a running analysis even while an input has focus; when
        # nothing runs, check_action passes it on to the screen (Back, Close).
        Binding("escape", "cancel", "Cancel analysis", id="cancel", priority=True),
        # Not the "quit" action: check_action turns this one off on dialogs, where q is a
        # letter, and Textual's Ctrl+Q (action "quit") must keep working everywhere.
        Binding("q", "quit_app", "Quit", id="quit"),
    ]

    # Messages from the worker threads (post_message is thread-safe; the handlers run on
    # the UI thread, where widgets may be touched).

    class QueryAnalyzed(Message):
        """One shape explained: its row fills in."""

        def __init__(self, entry: QueryReport) -> None:
            super().__init__()
            self.entry = entry

    class AnalysisProgress(Message):
        """The analysis starts on its next shape."""

        def __init__(self, progress: Progress) -> None:
            super().__init__()
            self.progress = progress

    class AnalysisEnded(Message):
        """The analysis finished, was stopped (Workbench.cancelled) or failed (error)."""

        def __init__(self, error: BaseException | None) -> None:
            super().__init__()
            self.error = error

    class WorkloadLoaded(Message):
        """A log or a paste was read (or could not be: error)."""

        def __init__(self, error: BaseException | None, analyze: bool) -> None:
            super().__init__()
            self.error = error
            self.analyze = analyze

    def __init__(
        self,
        workbench: Workbench | None = None,
        *,
        logs: Sequence[str] = (),
        settings: Settings | None = None,
        ask_connection: bool = False,
    ) -> None:
        self.settings = settings or Settings()
        super().__init__()
        self.workbench = workbench or Workbench()
        self.logs = list(logs)
        self.ask_connection = ask_connection
        self.workload_screen = WorkloadScreen(self.workbench)
        #: After a pasted statement is analyzed, its query screen opens.
        self._open_after_analysis = False

    # -- start -------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._apply_settings()
        self.push_screen(self.workload_screen)
        if self.logs:
            self.load_logs(self.logs)
        elif self.ask_connection:
            self.action_connect()

    def on_unmount(self) -> None:
        # Quitting during a long statement: cancel it, or the exit waits for it to end.
        if self.workbench.running:
            self.workbench.cancel()

    def _apply_settings(self) -> None:
        theme = self.settings.theme
        if theme:
            if theme in self.available_themes:
                self.theme = theme
            else:
                known = ", ".join(sorted(self.available_themes))
                self.notify(
                    f"unknown theme {theme!r} in the config (known: {known})",
                    severity="warning",
                    markup=False,
                )
        if self.settings.keys:
            self.set_keymap(self.settings.keys)

    # -- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.workbench.running
        if action == "quit_app":
            # Off (and the key passed on, to be typed or ignored) while a dialog is on top.
            return not self.dialog_on_top()
        return True

    def dialog_on_top(self) -> bool:
        """A dialog is on top: a modal screen (export, connect, help, open log) or a
        screen made for typing (paste), where a letter must not act on the app."""
        screen = self.screen
        return screen.is_modal or getattr(screen, "TYPING", False) is True

    async def action_quit_app(self) -> None:
        if self.dialog_on_top():
            raise SkipAction()
        await self.action_quit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_paste(self) -> None:
        from explainer.tui.screens.paste import PasteScreen

        if not isinstance(self.screen, PasteScreen):
            self.push_screen(PasteScreen())

    def action_export(self) -> None:
        from explainer.tui.screens.export import ExportScreen

        if isinstance(self.screen, ExportScreen):
            return
        report = self.workbench.report
        if report is None or self.workbench.running:
            self.notify("nothing to export yet: analyze the workload first (a)", severity="warning")
            return
        self.push_screen(ExportScreen(report))

    def action_connect(self) -> None:
        from explainer.tui.screens.connect import ConnectScreen

        if isinstance(self.screen, ConnectScreen):
            return
        current = strip_password(self.workbench.dsn) if self.workbench.dsn else None
        self.push_screen(ConnectScreen(load_history(), dsn=current), self._connected)

    def action_open_query(self, query_id: str) -> None:
        self.open_query(query_id)

    def action_analyze(self) -> None:
        workbench = self.workbench
        if workbench.running:
            self.notify("an analysis is running (Esc cancels it)", severity="warning")
            return
        if workbench.workload is None:
            self.notify("no workload: open a log (o) or paste SQL (p)", severity="warning")
            return
        self.workload_screen.analysis_started()
        self._analyze()

    def action_open_log(self) -> None:
        self.push_screen(OpenLogScreen(), self._log_chosen)

    def action_cancel(self) -> None:
        if not self.workbench.running:
            raise SkipAction()
        self.notify("cancelling the running statement...", timeout=2)
        self._cancel()

    def open_query(self, query_id: str) -> None:
        from explainer.tui.screens.query import QueryScreen

        entry = self.workbench.entries.get(query_id)
        report = self.workbench.report
        if entry is None or report is None:
            self.notify("that query is not analyzed (yet)", severity="warning")
            return
        self.push_screen(QueryScreen(entry, report))

    def load_logs(self, paths: Sequence[str]) -> None:
        """Read logs as the workload (in a worker), then analyze them."""
        if self._busy():
            return
        self._load(list(paths))

    # -- answers from screens ----------------------------------------------------------

    def _connected(self, dsn: str | None) -> None:
        if dsn is None:
            return
        self.workbench.dsn = dsn
        if dsn:
            remember(dsn)
        self.workload_screen.sub_title = self.workbench.display_dsn
        self.notify(f"connected: {self.workbench.display_dsn}", timeout=3, markup=False)
        if self.workbench.workload is not None and self.workbench.report is None:
            self.action_analyze()

    def _log_chosen(self, paths: str | None) -> None:
        if paths:
            self.load_logs(paths.split())

    # By its handler name, not @on(PasteScreen.Submitted): the paste screen is imported
    # when first opened, not with the app.
    def on_paste_screen_submitted(self, message: PasteScreen.Submitted) -> None:
        if message.kind == "plan" or self._busy():
            return
        self._back_to_workload()
        self._open_after_analysis = message.kind == "sql"
        self._load_text(message.text, message.kind)

    @on(WorkloadScreen.OpenQuery)
    def _open_from_workload(self, message: WorkloadScreen.OpenQuery) -> None:
        self.open_query(message.query_id)

    # -- the workers and what they report ----------------------------------------------

    def _busy(self) -> bool:
        if self.workbench.running:
            self.notify("an analysis is running: Esc cancels it first", severity="warning")
            return True
        return False

    @work(thread=True, exclusive=True, group="load")
    def _load(self, paths: list[str]) -> None:
        try:
            self.workbench.load_logs(paths)
        except Exception as exc:
            self.post_message(self.WorkloadLoaded(exc, analyze=False))
            return
        self.post_message(self.WorkloadLoaded(None, analyze=True))

    @work(thread=True, exclusive=True, group="load")
    def _load_text(self, text: str, kind: str) -> None:
        try:
            self.workbench.load_text(text, "sql" if kind == "sql" else "log")
        except Exception as exc:
            self.post_message(self.WorkloadLoaded(exc, analyze=False))
            return
        self.post_message(self.WorkloadLoaded(None, analyze=True))

    @on(WorkloadLoaded)
    def _workload_loaded(self, message: WorkloadLoaded) -> None:
        if message.error is not None:
            self._open_after_analysis = False
            self.notify(
                error_line(message.error), title="cannot read", severity="error", markup=False
            )
            return
        self.workload_screen.reload()
        if not self.workbench.groups:
            self.notify("no statement to analyze in that input", severity="warning")
            return
        if message.analyze:
            self.action_analyze()

    @work(thread=True, exclusive=True, group="analysis")
    def _analyze(self) -> None:
        try:
            self.workbench.analyze(on_query=self._post_query, on_progress=self._post_progress)
        except Exception as exc:
            self.post_message(self.AnalysisEnded(exc))
            return
        self.post_message(self.AnalysisEnded(None))

    def _post_query(self, entry: QueryReport) -> None:
        self.post_message(self.QueryAnalyzed(entry))

    def _post_progress(self, progress: Progress) -> None:
        self.post_message(self.AnalysisProgress(progress))

    @work(thread=True, group="cancel")
    def _cancel(self) -> None:
        self.workbench.cancel()

    @on(QueryAnalyzed)
    def _query_analyzed(self, message: QueryAnalyzed) -> None:
        self.workload_screen.query_analyzed(message.entry)

    @on(AnalysisProgress)
    def _analysis_progress(self, message: AnalysisProgress) -> None:
        self.workload_screen.analysis_progress(message.progress)

    @on(AnalysisEnded)
    def _analysis_ended(self, message: AnalysisEnded) -> None:
        self.workload_screen.analysis_finished()
        open_after, self._open_after_analysis = self._open_after_analysis, False
        workbench = self.workbench
        if message.error is not None:
            self.notify(
                error_line(message.error), title="analysis failed", severity="error", markup=False
            )
            if isinstance(message.error, ConnectionFailed):
                self.action_connect()
            return
        report = workbench.report
        if report is None:
            return
        if workbench.cancelled:
            self.notify(
                f"analysis stopped: {len(report.queries)} shapes kept, no index advice",
                severity="warning",
            )
            return
        failed = len(report.failed)
        self.notify(
            f"analyzed {len(report.queries)} shapes: {len(report.findings)} findings, "
            f"{len(report.suggestions)} index suggestions"
            + (f", {failed} failed" if failed else ""),
            timeout=4,
        )
        if open_after and len(report.queries) == 1:
            self.open_query(report.queries[0].id)

    def _back_to_workload(self) -> None:
        """Close every screen above the workload screen."""
        while len(self.screen_stack) > 1 and self.screen is not self.workload_screen:
            self.pop_screen()
