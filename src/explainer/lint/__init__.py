"""Schema lint: what is wrong with a database's schema itself, whatever the queries.

Foreign keys without an index, tables without a primary key, dates, booleans and numbers
stored as text, tables never analyzed, and the indexes the advisor would remove — each
with the SQL that fixes it and the SQLAlchemy model change. ``explainer lint`` runs it;
the rules are documented in docs/rules.md ("Schema lint").

The catalog is read once (:func:`explainer.lint.facts.read_facts`); the rules
(:mod:`explainer.lint.rules`) are pure functions of those facts. Nothing is written: the
only statements besides catalog reads are bounded, read-only samples of text columns
pg_stats knows nothing of.
"""

from __future__ import annotations

from explainer.advise.removals import since_phrase
from explainer.db.catalog import server_info, stats_since
from explainer.db.connection import connect
from explainer.db.explain import ExplainOptions, bound_session
from explainer.lint.facts import read_facts
from explainer.lint.model import (
    LINT_RULE_INFO,
    LINT_RULES,
    LintFacts,
    LintFinding,
    LintReport,
    LintRule,
)
from explainer.lint.rules import run_lint_rules

__all__ = [
    "LINT_RULES",
    "LINT_RULE_INFO",
    "LintFacts",
    "LintFinding",
    "LintReport",
    "LintRule",
    "lint_database",
    "run_lint_rules",
]


def lint_database(dsn: str | None, schema: str | None = None) -> LintReport:
    """Connect, read the facts of ``schema`` (every user schema when None), judge them.

    The session's statement_timeout and lock_timeout bound every catalog read, so the lint
    never waits for ever behind another session's lock.
    """
    with connect(dsn) as conn:
        bound_session(conn, ExplainOptions())
        info = server_info(conn)
        facts = read_facts(conn, schema)
        since = stats_since(conn)
    sampled = sorted({t if s == "public" else f"{s}.{t}" for (s, t, _c) in facts.samples})
    return LintReport(
        database=info.database,
        server_version=info.version,
        schema=schema,
        tables=len(facts.tables),
        findings=tuple(run_lint_rules(facts)),
        stats_since=since_phrase(since),
        sampled_tables=tuple(sampled),
    )
