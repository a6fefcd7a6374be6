"""The advisor's data: index candidates, the evidence that proves them, and suggestions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

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
class IndexCandidate:
    """An index that might help; it becomes a suggestion only once verified."""

    schema: str
    table: str
    #: Key columns in order; ``"created_at DESC"`` carries a direction.
    columns: tuple[str, ...]
    where: str | None = None
    using: str = "btree"
    include: tuple[str, ...] = ()

    @property
    def qualified_table(self) -> str:
        """The table as the report names it: schema-qualified only outside ``public``."""
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.removesuffix(" DESC") for c in self.columns)

    @property
    def name(self) -> str:
        return index_name(self.table, self.column_names)


class NoSuggestionReason(Enum):
    """Why a finding did not lead to an index suggestion (stable codes for the report)."""

    ALREADY_INDEXED = "already_indexed"
    NO_SARGABLE_PREDICATE = "no_sargable_predicate"
    NOT_USED = "not_used"
    NO_GAIN = "no_gain"
    VERIFY_FAILED = "verify_failed"
    UNKNOWN_TABLE = "unknown_table"


@dataclass(frozen=True, slots=True)
class NoSuggestion:
    reason: NoSuggestionReason
    detail: str
    table: str | None = None
    candidate: IndexCandidate | None = None


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

    @property
    def queries(self) -> list[str]:
        return list(self.evidence)
