"""The "Connections" section of every report format: pooling findings and the settings.

One module for the three formats (JSON object, terminal section, Markdown section) so the
report renderers each call one function, and what the formats say stays the same.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from explainer.advise.pooling import (
    ConnectionSummary,
    PoolingFinding,
    PoolingRecommendation,
    PoolingReport,
)
from explainer.db.activity import IdleTransaction, ServerActivity
from explainer.rules import Severity

_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}


# -- JSON (docs/report-format.md, "pooling") ---------------------------------------------------


def pooling_dict(pooling: PoolingReport | None) -> dict[str, Any] | None:
    if pooling is None:
        return None
    return {
        "observed": _summary_dict(pooling.summary),
        "server": None if pooling.server is None else _server_dict(pooling.server),
        "findings": [_finding_dict(f) for f in pooling.findings],
        "recommendation": _recommendation_dict(pooling.recommendation),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _summary_dict(summary: ConnectionSummary) -> dict[str, Any]:
    return {
        "sessions_opened": summary.sessions_opened,
        "sessions_closed": summary.sessions_closed,
        "median_session_s": _round(summary.median_session_s),
        "p95_session_s": _round(summary.p95_session_s),
        "max_session_s": _round(summary.max_session_s),
        "opened_per_s": _round(summary.opened_per_s, 2),
        "peak_sessions": summary.peak_sessions,
        "pool_connects": summary.pool_connects,
        "pool_checkouts": summary.pool_checkouts,
        "pool_waits": summary.pool_waits,
        "pool_timeouts": summary.pool_timeouts,
        "max_wait_ms": _round(summary.max_wait_ms),
        "peak_checked_out": summary.peak_checked_out,
        "processes": summary.processes,
        "pool": summary.pool,
    }


def _idle_dict(idle: IdleTransaction) -> dict[str, Any]:
    return {
        "pid": idle.pid,
        "user": idle.user,
        "database": idle.database,
        "application": idle.application,
        "client": idle.client,
        "idle_s": round(idle.idle_seconds, 3),
        "transaction_s": round(idle.transaction_seconds, 3),
        "locks": idle.locks,
        "relations": list(idle.relations),
        "blocking": idle.blocking,
        "aborted": idle.aborted,
        "query": idle.query,
    }


def _server_dict(server: ServerActivity) -> dict[str, Any]:
    return {
        "max_connections": server.max_connections,
        "superuser_reserved_connections": server.superuser_reserved,
        "reserved_connections": server.reserved,
        "usable": server.usable,
        "connections": server.total,
        "by_state": dict(server.by_state),
        "by_application": dict(server.by_application),
        "by_user": dict(server.by_user),
        "hidden": server.hidden,
        "idle_in_transaction_session_timeout_ms": server.idle_in_transaction_timeout_ms,
        "idle_session_timeout_ms": server.idle_session_timeout_ms,
        "idle_in_transaction": [_idle_dict(i) for i in server.idle_transactions],
    }


def _finding_dict(finding: PoolingFinding) -> dict[str, Any]:
    return {
        "rule": finding.id,
        "severity": finding.severity.value,
        "title": finding.title,
        "message": finding.message,
        "reasoning": finding.reasoning,
        "details": dict(finding.numbers),
    }


def _recommendation_dict(recommendation: PoolingRecommendation | None) -> dict[str, Any] | None:
    if recommendation is None:
        return None
    engine = recommendation.engine
    return {
        "create_engine": dict(engine.arguments()),
        "reasons": dict(engine.reasons),
        "create_engine_code": engine.create_engine_code(),
        "flask_config": engine.flask_config_code(),
        "server_settings": list(recommendation.server_settings),
        "app_changes": list(recommendation.app_changes),
    }


# -- terminal -------------------------------------------------------------------------------


def _code(text: str, language: str) -> Syntax:
    return Syntax(text, language, word_wrap=True, background_color="default")


def render_pooling(pooling: PoolingReport | None, console: Console) -> None:
    """The "Connections" section, only when there is a finding."""
    if pooling is None or not pooling.findings:
        return
    console.rule("Connections", align="left")
    for finding in pooling.findings:
        head = Text()
        head.append(f"{finding.severity.value:<6} ", style=_STYLE[finding.severity])
        head.append(f"{finding.id}", style="bold")
        head.append(f"  {finding.message}")
        console.print(head)
        console.print(Padding(Text(finding.reasoning, style="dim"), (0, 0, 0, 7)))
    recommendation = pooling.recommendation
    if recommendation is not None:
        engine = recommendation.engine
        parts: list[RenderableType] = [
            _code(engine.create_engine_code(), "python"),
            Text("Flask-SQLAlchemy:", style="italic"),
            _code(engine.flask_config_code(), "python"),
        ]
        parts += [Text(f"{name}: {why}", style="dim") for name, why in engine.reasons]
        if recommendation.server_settings:
            parts.append(Text("On the server:", style="italic"))
            parts.append(_code("\n".join(recommendation.server_settings), "sql"))
        parts += [Text(f"- {change}") for change in recommendation.app_changes]
        console.print(
            Panel(
                Group(*parts),
                title="[b]pool settings[/b]",
                title_align="left",
                border_style="green",
            )
        )
    console.print()


# -- Markdown -------------------------------------------------------------------------------


def pooling_markdown(pooling: PoolingReport | None) -> list[str]:
    """The "Connections" section, only when there is a finding."""
    if pooling is None or not pooling.findings:
        return []
    lines = ["## Connections", ""]
    for finding in pooling.findings:
        lines.append(f"- **{finding.severity.value}** `{finding.id}`: {finding.message}")
        lines.append(f"  {finding.reasoning}")
    lines.append("")
    recommendation = pooling.recommendation
    if recommendation is None:
        return lines
    engine = recommendation.engine
    lines += ["### Pool settings", ""]
    lines += ["```python", engine.create_engine_code(), "```", ""]
    lines += ["Flask-SQLAlchemy:", "", "```python", engine.flask_config_code(), "```", ""]
    lines += [f"- `{name}`: {why}" for name, why in engine.reasons]
    lines.append("")
    if recommendation.server_settings:
        lines += ["On the server:", "", "```sql", *recommendation.server_settings, "```", ""]
    if recommendation.app_changes:
        lines += [f"- {change}" for change in recommendation.app_changes]
        lines.append("")
    return lines
