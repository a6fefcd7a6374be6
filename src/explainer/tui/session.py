"""The workbench's state: where it connects, the workload it holds, the report as it fills.

No analysis happens here: reading inputs and analyzing are explainer.pipeline's, the
same functions the CLI calls. The Workbench only remembers what was read and found, runs
the analysis (in the caller's thread: the app calls :meth:`Workbench.analyze` from a
thread worker) and cancels it from another thread, on the server, with psycopg's
``cancel_safe()``.

Passwords: the DSN may hold one (typed in the connection dialog, kept in memory only);
everything shown goes through :func:`explainer.db.connection.redact_dsn`, and the
connection history keeps DSNs with the password removed (:func:`strip_password`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from explainer.db.connection import connect, normalize_dsn, redact_dsn

if TYPE_CHECKING:
    from explainer.db.explain import Connection
    from explainer.orm.models import ModelMap
    from explainer.pipeline import AnalyzeOptions
    from explainer.report import InputSummary, QueryReport, Report
    from explainer.workload import QueryGroup, Workload

# The analysis stack (explainer.pipeline and what it pulls in: the advisor, SQLAlchemy,
# sqlglot, pglast) is imported where it is first needed, in the methods that read and
# analyze: the workbench's first screen needs none of it, and it starts in under a second.

#: How long :meth:`Workbench.cancel` keeps asking the server to cancel (seconds).
CANCEL_PATIENCE = 5.0
#: How many DSNs the connection history keeps.
HISTORY_SIZE = 20


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a running analysis is: shape ``done`` of ``total`` started ``started``."""

    done: int
    total: int
    started: float
    current: str = ""

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Workbench:
    """The state one workbench session works on; safe to read from the UI thread while
    :meth:`analyze` runs in another (entries are only ever added, never replaced)."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        options: AnalyzeOptions | Callable[[], AnalyzeOptions] | None = None,
        models_target: str | None = None,
        models_python: str = sys.executable,
        models_timeout: float = 20.0,
    ) -> None:
        self.dsn = dsn
        self._options = options
        self.models_target = models_target
        self._models_python = models_python
        self._models_timeout = models_timeout
        self._models: ModelMap | None = None
        self.workload: Workload | None = None
        self._summary: InputSummary | None = None
        self.ordered = True
        #: The workload was pasted SQL: utility statements are explained to get their refusal.
        self.pasted = False
        #: The report of the last analysis; while one runs, the report being filled.
        self.report: Report | None = None
        #: Every analyzed query's entry, by query id (the group's fingerprint).
        self.entries: dict[str, QueryReport] = {}
        self.progress: Progress | None = None
        #: The last analysis was stopped: its report holds what was analyzed, no advice.
        self.cancelled = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._idle = threading.Event()
        self._idle.set()

    @property
    def options(self) -> AnalyzeOptions:
        """The analysis options: as given (a function giving them is called on first use,
        as the CLI does: building them imports the pipeline), else the CLI's defaults."""
        if self._options is None:
            from explainer.pipeline import AnalyzeOptions

            self._options = AnalyzeOptions()
        elif callable(self._options):
            self._options = self._options()
        return self._options

    @property
    def summary(self) -> InputSummary:
        """What the inputs held besides the queries (empty before any input is read)."""
        if self._summary is None:
            from explainer.report import InputSummary

            self._summary = InputSummary()
        return self._summary

    # -- what the UI shows -------------------------------------------------------------

    @property
    def display_dsn(self) -> str:
        """The DSN with its password replaced: the only form ever shown."""
        return redact_dsn(self.dsn)

    @property
    def running(self) -> bool:
        return not self._idle.is_set()

    @property
    def groups(self) -> list[QueryGroup]:
        """The shapes an analysis explains, in its order (heaviest first)."""
        if self.workload is None:
            return []
        from explainer.pipeline import analyzed_groups

        return analyzed_groups(self.workload, self._analyze_options())

    def suggestion_count(self, query_id: str) -> int:
        """How many of the report's index suggestions serve this query."""
        if self.report is None:
            return 0
        return sum(1 for s in self.report.suggestions if query_id in s.evidence)

    # -- inputs ------------------------------------------------------------------------

    def load_logs(self, paths: Sequence[str]) -> None:
        """Read logs (any format explainer reads, globs expanded) as the new workload."""
        from explainer.pipeline import read_workload

        workload, summary, ordered = read_workload(logs=paths)
        self._set_workload(workload, summary, ordered, pasted=False)

    def load_text(self, text: str, kind: Literal["sql", "log"]) -> None:
        """A paste as the new workload: SQL statements, or a log excerpt of any format
        (read from a temporary file, as a log given by path would be)."""
        from explainer.capture import read_sql_text
        from explainer.pipeline import read_workload
        from explainer.report import InputSummary
        from explainer.workload import build_workload

        if kind == "sql":
            queries, stats = read_sql_text(text, "<paste>")
            summary = InputSummary(
                sources=["<paste>"], statements=len(queries), skipped=dict(stats.skip_reasons)
            )
            self._set_workload(build_workload(queries, keep_order=True), summary, True, pasted=True)
            return
        with tempfile.TemporaryDirectory(prefix="explainer-paste-") as folder:
            path = Path(folder, "pasted.log")
            path.write_text(text, encoding="utf-8")
            workload, summary, ordered = read_workload(logs=[str(path)])
        summary.sources = ["<pasted log>"]
        self._set_workload(workload, summary, ordered, pasted=False)

    def _set_workload(
        self, workload: Workload, summary: InputSummary, ordered: bool, *, pasted: bool
    ) -> None:
        self.workload, self._summary, self.ordered, self.pasted = workload, summary, ordered, pasted
        self.report, self.entries, self.progress, self.cancelled = None, {}, None, False

    # -- the database ------------------------------------------------------------------

    @staticmethod
    def test_connection(dsn: str | None) -> str:
        """Connect once and say to what; raises ConnectionFailed with the server's reason."""
        with connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SELECT current_database(), current_user").fetchone()
            version = conn.info.server_version
        database, user = row if row is not None else ("?", "?")
        major, minor = divmod(version, 10000)
        return f"connected to PostgreSQL {major}.{minor} as {user}, database {database}"

    def analyze(
        self,
        on_query: Callable[[QueryReport], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Report:
        """Analyze the workload (blocking: call it from a worker thread).

        ``on_query`` gets each entry as soon as it is explained, ``on_progress`` the
        progress before each shape; both are called from this thread.
        """
        if self.workload is None:
            raise RuntimeError("no workload loaded")
        from explainer.pipeline import analyze_workload

        self._stop.clear()
        self._idle.clear()
        self.cancelled = False
        self.entries = {}
        self.report = None
        started = time.monotonic()
        try:
            models = self._load_models()

            def progress(number: int, total: int, group: QueryGroup) -> None:
                self.progress = Progress(number - 1, total, started, group.example.sql)
                if on_progress is not None:
                    on_progress(self.progress)

            def query_done(entry: QueryReport, report: Report) -> None:
                self.report = report
                self.entries[entry.id] = entry
                if self.progress is not None:
                    self.progress = replace(self.progress, done=self.progress.done + 1)
                if on_query is not None:
                    on_query(entry)

            report = analyze_workload(
                self.dsn,
                self.workload,
                self._analyze_options(),
                inputs=replace(self.summary, skipped=dict(self.summary.skipped)),
                progress=progress,
                models=models,
                models_target=self.models_target,
                ordered=self.ordered,
                on_query=query_done,
                on_connect=self._connected,
                should_stop=self._stop.is_set,
            )
        finally:
            with self._lock:
                self._conn = None
            self._idle.set()
        self.cancelled = self._stop.is_set()
        self.set_report(report)
        return report

    def set_report(self, report: Report) -> None:
        """Show ``report`` as the workload's analysis (the end of :meth:`analyze`; a
        report made elsewhere, such as a test's fixed one)."""
        self.report = report
        self.entries = {entry.id: entry for entry in report.queries}

    def cancel(self) -> bool:
        """Stop the running analysis: no further statement starts, and the running one is
        cancelled on the server. Blocking for up to a few seconds (a network round trip,
        repeated while the analysis has not noticed): call it from a worker thread.
        Returns whether an analysis was running."""
        if not self.running:
            return False
        self._stop.set()
        deadline = time.monotonic() + CANCEL_PATIENCE
        # A cancel that arrives between two statements cancels nothing, so it is sent
        # again until the analysis thread has seen the stop.
        while time.monotonic() < deadline:
            with self._lock:
                conn = self._conn
            if conn is not None and not conn.closed:
                # The connection may be gone already: then so is its statement.
                with suppress(psycopg.Error):
                    conn.cancel_safe(timeout=2.0)
            if self._idle.wait(0.2):
                break
        return True

    def _connected(self, conn: Connection) -> None:
        with self._lock:
            self._conn = conn

    def _analyze_options(self) -> AnalyzeOptions:
        return replace(self.options, include_utility=self.pasted)

    def _load_models(self) -> ModelMap | None:
        if self.models_target and self._models is None:
            from explainer.orm.models import load_models

            self._models = load_models(
                self.models_target, python=self._models_python, timeout=self._models_timeout
            )
        return self._models


# -- connection history ------------------------------------------------------------------


def strip_password(dsn: str) -> str:
    """The DSN without its password, in the form it was given where possible: what the
    history may keep."""
    conninfo = normalize_dsn(dsn)
    if "password" not in conninfo_to_dict(conninfo):
        return dsn.strip()
    if "://" in conninfo:
        # redact_dsn writes the password as ':***' in the user part, and quotes ':' and
        # '*' everywhere else, so this removes exactly the placeholder.
        return redact_dsn(conninfo).replace(":***@", "@", 1)
    params = {k: v for k, v in conninfo_to_dict(conninfo).items() if k != "password"}
    return make_conninfo("", **params)


def with_password(dsn: str | None, password: str) -> str | None:
    """The DSN with a password typed in the dialog (kept in memory only)."""
    if not password:
        return dsn
    return make_conninfo(normalize_dsn(dsn), password=password)


def state_dir() -> Path:
    """The user's state directory for explainer (XDG_STATE_HOME, else ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "explainer"


def history_path() -> Path:
    return state_dir() / "connections.json"


def load_history(path: Path | None = None) -> list[str]:
    """DSNs used before, most recent first; an unreadable file is an empty history."""
    path = path or history_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, str)][:HISTORY_SIZE]


def remember(dsn: str, path: Path | None = None) -> list[str]:
    """Put ``dsn`` (its password removed) first in the history; returns the history.
    A history that cannot be written is not worth an error: it is only a convenience."""
    path = path or history_path()
    entry = strip_password(dsn)
    history = [entry, *(d for d in load_history(path) if d != entry)][:HISTORY_SIZE]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)
    except OSError:
        pass
    return history
