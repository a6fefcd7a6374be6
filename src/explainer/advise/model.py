"""The advisor's data: index candidates, the evidence that proves them, and suggestions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from explainer.db.catalog import Partition
from explainer.plan import Plan
from explainer.plan.compare import PlanComparison, compare_plans

#: PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
MAX_IDENTIFIER_BYTES = 63

VerifyMethod = Literal["rollback", "hypopg", "estimate"]


def index_name(table: str, columns: tuple[str, ...], prefix: str = "ix") -> str:
    """``ix_<table>_<columns>`` as SQLAlchemy's default naming does, cut to fit 63 bytes.

    A name PostgreSQL would silently truncate could collide with another index's, so a
    long one is shortened here and made unique again with a short hash of the full name.
    """
    words = [_name_part(table)] + [_name_part(c) for c in columns]
    name = "_".join([prefix, *words])
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.md5(name.encode()).hexdigest()[:8]
    keep = MAX_IDENTIFIER_BYTES - len(digest) - 1
    cut = name.encode()[:keep].decode(errors="ignore").rstrip("_")
    return f"{cut}_{digest}"


def _name_part(text: str) -> str:
    """An expression reduced to what an identifier can hold: lower(email) -> lower_email."""
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in text.lower())
    return "_".join(part for part in cleaned.split("_") if part)


@dataclass(frozen=True, slots=True)
class IndexKey:
    """One key of an index: a column or an expression, with its order and operator class.

    ``text`` is the column's name (unquoted) or the expression's SQL exactly as the
    planner must see it to match a predicate (``lower(email)``, ``(payload ->> 'kind')``):
    an expression index is used only for a predicate on the very same expression.
    """

    text: str
    expression: bool = False
    descending: bool = False
    #: None: the direction's default (NULLS LAST ascending, NULLS FIRST descending).
    nulls_first: bool | None = None
    #: An operator class other than the type's default (``gin_trgm_ops``, ``jsonb_path_ops``).
    opclass: str | None = None

    @classmethod
    def parse(cls, spec: str) -> IndexKey:
        """A key from the short form tests and reports use: ``created_at DESC``,
        ``lower(email)``, ``name gin_trgm_ops``, ``due NULLS FIRST``."""
        text = spec.strip()
        nulls_first: bool | None = None
        upper = text.upper()
        if upper.endswith(" NULLS FIRST"):
            text, nulls_first = text[: -len(" NULLS FIRST")].rstrip(), True
        elif upper.endswith(" NULLS LAST"):
            text, nulls_first = text[: -len(" NULLS LAST")].rstrip(), False
        descending = False
        if text.upper().endswith(" DESC"):
            text, descending = text[: -len(" DESC")].rstrip(), True
        elif text.upper().endswith(" ASC"):
            text = text[: -len(" ASC")].rstrip()
        opclass = None
        head, _, last = text.rpartition(" ")
        if head and last.endswith("_ops"):
            text, opclass = head.rstrip(), last
        expression = not text.replace("_", "a").replace("$", "a").isalnum() or text[:1].isdigit()
        return cls(text, expression, descending, nulls_first, opclass)

    @property
    def column(self) -> str | None:
        """The column's name for a plain column key, None for an expression."""
        return None if self.expression else self.text

    @property
    def label(self) -> str:
        """The key as the report shows it, and as :meth:`parse` reads it back."""
        parts = [self.text]
        if self.opclass:
            parts.append(self.opclass)
        if self.descending:
            parts.append("DESC")
        if self.nulls_first is True and not self.descending:
            parts.append("NULLS FIRST")
        elif self.nulls_first is False and self.descending:
            parts.append("NULLS LAST")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class IndexCandidate:
    """An index that might help; it becomes a suggestion only once verified."""

    schema: str
    table: str
    keys: tuple[IndexKey, ...]
    #: A partial index's predicate, written so that the planner can prove the query's
    #: WHERE implies it (the query's own constant, the same operator).
    where: str | None = None
    using: str = "btree"
    #: Non-key columns stored in the index (``INCLUDE``) for index-only scans.
    include: tuple[str, ...] = ()
    #: The name the user's models give this index (their metadata's naming convention),
    #: set once the suggestion is final so that migration, script and model agree. Not
    #: part of the index's identity: the same index under another name is the same index.
    given_name: str | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        schema: str,
        table: str,
        *keys: str | IndexKey,
        where: str | None = None,
        using: str = "btree",
        include: tuple[str, ...] = (),
    ) -> IndexCandidate:
        """A candidate from keys in short form: ``IndexCandidate.of("public", "orders",
        "status", "created_at DESC")``."""
        parsed = tuple(k if isinstance(k, IndexKey) else IndexKey.parse(k) for k in keys)
        return cls(schema, table, parsed, where=where, using=using, include=include)

    @property
    def qualified_table(self) -> str:
        """The table as the report names it: schema-qualified only outside ``public``."""
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"

    @property
    def described(self) -> str:
        """The index as a reason's sentence names it: ``orders (status) INCLUDE (total)
        WHERE (deleted_at IS NULL)``, `` USING gin`` when not a btree."""
        text = f"{self.qualified_table}"
        if self.using != "btree":
            text += f" USING {self.using}"
        text += f" ({', '.join(self.columns)})"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        if self.where is not None:
            text += f" WHERE ({self.where})"
        return text

    @property
    def columns(self) -> tuple[str, ...]:
        """Every key in short form (``created_at DESC``, ``lower(email)``): the report's
        ``columns`` field."""
        return tuple(key.label for key in self.keys)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Key columns and expressions without direction or operator class."""
        return tuple(key.text for key in self.keys)

    @property
    def name(self) -> str:
        if self.given_name is not None:
            return self.given_name
        # A partial index is named after its predicate too, so that it never takes the
        # name of a full index on the same keys: ix_orders_created_at_where_status_pending.
        suffix: tuple[str, ...] = ()
        if self.using != "btree":
            # ix_docs_title_trgm beside a btree ix_docs_title on the same column.
            trigram = any(k.opclass and "trgm" in k.opclass for k in self.keys)
            suffix += ("trgm" if trigram else self.using,)
        if self.include:
            # ix_accounts_email_incl_id beside a plain ix_accounts_email.
            suffix += ("incl", *self.include)
        if self.where is not None:
            suffix += ("where", self.where)
        return index_name(self.table, self.column_names + suffix)


class NoSuggestionReason(Enum):
    """Why a finding did not lead to an index suggestion (stable codes for the report)."""

    ALREADY_INDEXED = "already_indexed"
    NO_SARGABLE_PREDICATE = "no_sargable_predicate"
    NOT_USED = "not_used"
    NO_GAIN = "no_gain"
    VERIFY_FAILED = "verify_failed"
    UNKNOWN_TABLE = "unknown_table"
    #: The table is too small for an index to matter (a sequential scan is as fast).
    SMALL_TABLE = "small_table"
    #: The filtered column(s) keep too large a share of the rows (pg_stats) to be worth it.
    LOW_SELECTIVITY = "low_selectivity"
    #: The statement has $n placeholders and no logged values: it cannot be run to measure.
    NOT_REPLAYABLE = "not_replayable"
    #: The index would need an extension that is not installed (pg_trgm for LIKE '%x%').
    NEEDS_EXTENSION = "needs_extension"
    #: The table is above the size limit for building a test index (--allow-large).
    TABLE_TOO_LARGE = "table_too_large"
    #: The query's cost before any index is below the minimum worth advising on.
    CHEAP_QUERY = "cheap_query"
    #: Verified for the query, then left out of the workload's set: it made other queries
    #: slower, or --max-indexes / --max-size kept indexes that save more.
    LEFT_OUT = "left_out"


@dataclass(frozen=True, slots=True)
class NoSuggestion:
    reason: NoSuggestionReason
    detail: str
    table: str | None = None
    candidate: IndexCandidate | None = None
    #: For ``already_indexed``: the existing index that already serves the query.
    existing: str | None = None


@dataclass(slots=True)
class Evidence:
    """Before/after figures for one query with and without a candidate index."""

    method: VerifyMethod
    before_cost: float
    after_cost: float | None
    before_ms: float | None = None
    after_ms: float | None = None
    #: Whether the planner chose the new index for the query.
    index_used: bool = False
    before_plan: Plan | None = field(default=None, repr=False)
    after_plan: Plan | None = field(default=None, repr=False)
    #: The first measurement landed close to the ``--min-gain`` line, so both sides were
    #: run again and each figure is the best of twice as many runs
    #: (:func:`explainer.advise.verify.close_call`).
    measured_again: bool = False

    @property
    def before_timed_out(self) -> bool:
        """The query without the index reached statement_timeout: ``before_ms`` is the
        timeout, a lower bound ("at least"), and the before plan is the estimated one."""
        return (
            self.before_ms is not None
            and self.before_plan is not None
            and self.before_plan.total_ms is None
        )

    @property
    def comparison(self) -> PlanComparison | None:
        """The before and after plans with their nodes matched (the model behind
        ``explainer plan --compare``): which node changed and which explains the gain."""
        if self.before_plan is None or self.after_plan is None:
            return None
        return compare_plans(self.before_plan, self.after_plan)

    @property
    def speedup(self) -> float | None:
        """How many times faster (by time when measured, else by cost)."""
        if self.before_ms is not None and self.after_ms:
            return self.before_ms / self.after_ms
        if self.after_cost:
            return self.before_cost / self.after_cost
        return None


@dataclass(slots=True)
class IndexSuggestion:
    candidate: IndexCandidate
    #: Evidence per query fingerprint the index helps.
    evidence: dict[str, Evidence]
    #: The finding rules that led here (``seq-scan-selective``...).
    rules: list[str] = field(default_factory=list)
    #: When the table is partitioned: every partition under it, which the exported
    #: script builds one by one (CONCURRENTLY is refused on the partitioned table).
    partitions: tuple[Partition, ...] = ()
    #: Per query: the other suggested indexes its evidence was measured with, when it pays
    #: off only together with them (a join: one index is worth it once the other exists).
    #: Without them that query's saving is not this index's.
    partners: dict[str, tuple[IndexCandidate, ...]] = field(default_factory=dict)

    @property
    def queries(self) -> list[str]:
        return list(self.evidence)
