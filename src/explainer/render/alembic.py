"""Alembic revisions for the suggestions and the removals, as ``alembic revision`` writes them.

Autogenerate would write ``op.create_index(...)`` in the migration's transaction, where
``CONCURRENTLY`` fails, and without it the build locks out writes to the table for its
whole duration. So each index is built inside ``op.get_context().autocommit_block()``
with ``postgresql_concurrently=True`` and ``if_not_exists=True`` (a re-run after a
partial failure does not stop on the indexes already built), and ``downgrade()`` drops
them the same way. Removals get a revision of their own, after the additions: a team
reviews "add" and "drop" separately and may merge only one.

``down_revision`` is the current head of the user's migrations, read with Alembic's own
:class:`ScriptDirectory` (so branches, ``version_locations`` and merge points count as
Alembic counts them); without a migrations folder the revision stands alone.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from explainer.advise.ddl import key_sql, qualified_name
from explainer.advise.model import IndexCandidate, IndexKey, IndexSuggestion
from explainer.errors import InputError
from explainer.render.sql import (
    evidence_lines,
    partition_candidate,
    partitioned_index_statements,
    removal_lines,
)
from explainer.report import Report


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision file: its id, its parent and its text."""

    revision: str
    down_revision: str | None
    message: str
    text: str


def new_revision_id() -> str:
    """12 hex digits, as ``alembic.util.rev_id()`` makes them."""
    return uuid.uuid4().hex[-12:]


def current_head(alembic_dir: str | Path) -> str | None:
    """The head revision of a migrations folder (or of the ``alembic.ini`` that names one).

    More than one head means unmerged branches: a new revision would have to pick one,
    so the user is told to merge them first.
    """
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError
    except ImportError:
        raise InputError("--alembic-dir needs Alembic installed: pip install alembic") from None
    path = Path(alembic_dir)
    if not path.exists():
        raise InputError(f"--alembic-dir {alembic_dir}: no such file or folder")
    try:
        if path.is_file():
            script = ScriptDirectory.from_config(Config(str(path)))
        else:
            script = ScriptDirectory(str(path))
        heads = script.get_heads()
    except CommandError as exc:
        raise InputError(f"--alembic-dir {alembic_dir}: {exc}") from None
    if len(heads) > 1:
        raise InputError(
            f"--alembic-dir {alembic_dir} has {len(heads)} heads ({', '.join(sorted(heads))}): "
            "merge them first (alembic merge heads)"
        )
    return heads[0] if heads else None


def _key_code(key: IndexKey) -> str:
    """A plain ascending column by name; anything else as the SQL PostgreSQL reads
    (``sa.text("created_at DESC")``, ``sa.text("lower(email)")``), since Alembic passes a
    text key through verbatim and that is the only way to keep the key exactly as verified."""
    if not key.expression and not key.descending and key.nulls_first is None:
        return repr(key.text)
    return f"sa.text({key_sql(key)!r})"


def create_index_code(candidate: IndexCandidate) -> str:
    """``op.create_index(...)`` for a candidate, with every PostgreSQL option it has."""
    args = [
        repr(candidate.name),
        repr(candidate.table),
        "[" + ", ".join(_key_code(k) for k in candidate.keys) + "]",
    ]
    if candidate.schema != "public":
        args.append(f"schema={candidate.schema!r}")
    if candidate.using != "btree":
        args.append(f"postgresql_using={candidate.using!r}")
    ops = {
        k.text: k.opclass
        for k in candidate.keys
        if k.opclass and not k.expression and not k.descending and k.nulls_first is None
    }
    if ops:
        args.append(f"postgresql_ops={ops!r}")
    if candidate.include:
        args.append(f"postgresql_include={list(candidate.include)!r}")
    if candidate.where:
        args.append(f"postgresql_where=sa.text({candidate.where!r})")
    args += ["postgresql_concurrently=True", "if_not_exists=True"]
    return _call("op.create_index", args)


def _create_code(suggestion: IndexSuggestion) -> str:
    """``op.create_index`` for a plain table; on a partitioned one, the recipe's statements
    (Alembic has no ``ON ONLY`` nor ``ATTACH PARTITION``), each with ``op.execute``."""
    if not suggestion.partitions:
        return create_index_code(suggestion.candidate)
    statements = partitioned_index_statements(suggestion.candidate, suggestion.partitions)
    return "\n".join(f"op.execute({statement.rstrip(';')!r})" for statement in statements)


def _undo_code(suggestion: IndexSuggestion) -> str:
    """Dropping a partitioned index drops the partitions' indexes attached to it (it
    cannot be CONCURRENTLY); the partitions' are then dropped too, in case a failed
    upgrade left some built but not attached."""
    c = suggestion.candidate
    if not suggestion.partitions:
        return _drop_code(c.name, c.table, c.schema)
    lines = [f"op.execute({'DROP INDEX IF EXISTS ' + qualified_name(c.schema, c.name)!r})"]
    for partition in suggestion.partitions:
        child = partition_candidate(c, partition)
        if partition.partitioned:
            drop = f"DROP INDEX IF EXISTS {qualified_name(child.schema, child.name)}"
            lines.append(f"op.execute({drop!r})")
        else:
            lines.append(_drop_code(child.name, child.table, child.schema))
    return "\n".join(lines)


def _call(function: str, args: list[str]) -> str:
    """One argument a line, as ruff format and black lay out a long call."""
    return f"{function}(\n" + "".join(f"    {a},\n" for a in args) + ")"


def _drop_code(name: str, table: str, schema: str) -> str:
    args = [repr(name), f"table_name={table!r}"]
    if schema != "public":
        args.append(f"schema={schema!r}")
    args += ["postgresql_concurrently=True", "if_exists=True"]
    return _call("op.drop_index", args)


_CREATE = re.compile(r"^CREATE (UNIQUE )?INDEX ", re.I)


def _recreate_sql(definition: str) -> str:
    """``pg_get_indexdef`` text made concurrent and re-runnable, for a removal's downgrade."""
    return _CREATE.sub(
        lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY IF NOT EXISTS ", definition
    )


def _indent(block: str, spaces: int) -> list[str]:
    return [(" " * spaces + line) if line else "" for line in block.splitlines()]


def _comments(lines: list[str], spaces: int) -> list[str]:
    return [" " * spaces + "# " + line for line in lines]


def _autocommit(body: list[str]) -> list[str]:
    return ["    with op.get_context().autocommit_block():", *body]


def _file(
    revision: str, down: str | None, message: str, upgrade: list[str], downgrade: list[str]
) -> str:
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    lines = [
        f'"""{message}',
        "",
        f"Revision ID: {revision}",
        f"Revises: {down or ''}",
        f"Create Date: {created}",
        "",
        "Generated by explainer. CREATE/DROP INDEX CONCURRENTLY cannot run in a",
        "transaction, so each runs in an autocommit block: if one fails (lock timeout),",
        "the ones before it stay built, and a re-run skips them (IF [NOT] EXISTS).",
        '"""',
        "",
        "from collections.abc import Sequence",
        "",
        "import sqlalchemy as sa",
        "from alembic import op",
        "",
        "# revision identifiers, used by Alembic.",
        f"revision: str = {revision!r}",
        f"down_revision: str | None = {down!r}",
        "branch_labels: str | Sequence[str] | None = None",
        "depends_on: str | Sequence[str] | None = None",
        "",
        "",
        "def upgrade() -> None:",
        *upgrade,
        "",
        "",
        "def downgrade() -> None:",
        *downgrade,
        "",
    ]
    # sqlalchemy is imported even when unused, as Alembic's own template does.
    return "\n".join(lines)


def upgrade_code(report: Report) -> str:
    """The revision's ``upgrade()`` body without its comments: what a reviewer of the
    Markdown report reads (the export writes the whole revision beside it)."""
    body = [_create_code(suggestion) for suggestion in report.suggestions]
    inner = "\n".join(line for block in body for line in _indent(block, 4))
    return "with op.get_context().autocommit_block():\n" + inner


def add_indexes_revision(report: Report, *, down_revision: str | None) -> Revision | None:
    """The revision that builds every suggestion; None when there is none."""
    if not report.suggestions:
        return None
    revision = new_revision_id()
    message = "add indexes suggested by explainer"
    upgrade: list[str] = []
    for suggestion in report.suggestions:
        upgrade += _comments(evidence_lines(suggestion, report), 8)
        upgrade += _indent(_create_code(suggestion), 8)
    downgrade: list[str] = []
    for suggestion in reversed(report.suggestions):
        downgrade += _indent(_undo_code(suggestion), 8)
    return Revision(
        revision,
        down_revision,
        message,
        _file(revision, down_revision, message, _autocommit(upgrade), _autocommit(downgrade)),
    )


def drop_indexes_revision(report: Report, *, down_revision: str | None) -> Revision | None:
    """The revision that drops the removals (and rebuilds them on downgrade, from their
    ``pg_get_indexdef``); None when there is none."""
    if not report.removals:
        return None
    revision = new_revision_id()
    message = "drop indexes explainer found unneeded"
    upgrade: list[str] = []
    downgrade: list[str] = []
    for removal in report.removals:
        upgrade += _comments(removal_lines(removal), 8)
        upgrade += _indent(_drop_code(removal.index, removal.table, removal.schema), 8)
        downgrade += _indent(f"op.execute({_recreate_sql(removal.definition)!r})", 8)
    return Revision(
        revision,
        down_revision,
        message,
        _file(revision, down_revision, message, _autocommit(upgrade), _autocommit(downgrade)),
    )
