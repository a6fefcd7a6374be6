"""The records every capture reader produces, whatever the input format.

Readers (plain SQL, PostgreSQL stderr logs, and later csvlog, jsonlog, driver echo logs,
pg_stat_statements...) differ only in how they find statements; downstream stages see one
shape, so a field a format cannot provide stays ``None`` rather than being guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CapturedQuery:
    """One execution of one statement, as found in the input."""

    sql: str
    """The statement text as logged or pasted, without a trailing semicolon."""
    duration_ms: float | None = None
    """Execution time when the source records it."""
    source: str = "<input>"
    """File name, or ``<stdin>`` / ``<query>`` for text that came from no file."""
    line: int = 0
    """1-based line of the source where the statement (or its log entry) starts."""
    session: str | None = None
    """Backend pid or session id when known: it tells concurrent sessions apart."""
    timestamp: str | None = None
    """As written by the source; ISO-like, so texts of one source sort chronologically."""
    user: str | None = None
    database: str | None = None
    parameters: tuple[str | None, ...] = ()
    """Values of ``$1``, ``$2``... when the source logged them (``None`` is SQL NULL)."""
    replayable: bool = True
    """False when the values cannot be replayed as logged (a parameter value truncated
    by ``log_parameter_max_length``, or a driver repr cut short)."""
    calls: int = 1
    """Executions this record stands for: 1 for a log entry; a pg_stat_statements row
    aggregates many, and ``duration_ms`` is then their total."""
    transaction: str | None = None
    """Which transaction of its session the statement ran in, when the source marks
    transaction boundaries (``BEGIN``/``COMMIT``, ``%x``, SQLAlchemy's ``BEGIN (implicit)``)."""
    application: str | None = None
    observed_plan: object | None = None
    """The plan auto_explain logged for this execution: a JSON document (dict) or the
    plan text, as logged."""


@dataclass(slots=True)
class CaptureStats:
    """What a reader saw, so a user can tell a quiet log from a misread one."""

    lines_read: int = 0
    queries: int = 0
    skipped: int = 0
    """Pieces of input that could have been queries but were not used."""
    skip_reasons: dict[str, int] = field(default_factory=dict)
    """Reason -> count; the counts add up to ``skipped``."""

    def merge(self, other: CaptureStats) -> None:
        """Add the counts of ``other`` (another input, or a part of this one)."""
        self.lines_read += other.lines_read
        self.queries += other.queries
        for reason, count in other.skip_reasons.items():
            self.skip(reason, count)

    def skip(self, reason: str, count: int = 1) -> None:
        """Record ``count`` skipped pieces under ``reason``."""
        self.skipped += count
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + count
