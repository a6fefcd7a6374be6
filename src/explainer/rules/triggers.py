"""Triggers that take a large share of the statement: ``slow-fk-trigger`` and ``slow-triggers``.

EXPLAIN ANALYZE reports trigger time outside every plan node, so a statement can look fast
node by node and still be slow. The classic case is a foreign key: deleting (or changing the
key of) a row of the referenced table fires a constraint trigger that looks for referencing
rows, and without an index on the referencing columns each call scans the whole referencing
table. Other triggers are user code; the finding says how much time they take.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from explainer.plan import Plan
from explainer.rules.model import (
    Finding,
    ForeignKeyFacts,
    RuleContext,
    severity_for_share,
)
from explainer.rules.plan_helpers import modify_table_on, number, share

FK_ID = "slow-fk-trigger"
TRIGGERS_ID = "slow-triggers"

#: Trigger time must reach this share of the execution time...
MIN_SHARE = 0.1
#: ...and this many milliseconds (a foreign key check per row on a small insert is normal).
MIN_MS = 10.0

#: Which side of a foreign key a constraint trigger runs on.
Side = Literal["referenced", "referencing", "unknown"]


def _text(trigger: Mapping[str, Any], key: str) -> str | None:
    value = trigger.get(key)
    return value if isinstance(value, str) and value else None


def _side(
    plan: Plan, trigger: Mapping[str, Any], relation: str | None, fk: ForeignKeyFacts | None
) -> Side:
    """``referenced``: an action trigger (RI_ConstraintTrigger_a_*), fired by DELETE or a key
    UPDATE of the referenced table, that searches the referencing table. ``referencing``: a
    check trigger (RI_ConstraintTrigger_c_*), fired by INSERT or UPDATE of the referencing
    table, that looks the key up through the referenced table's unique index."""
    name = _text(trigger, "Trigger Name") or ""
    if name.startswith("RI_ConstraintTrigger_a_"):
        return "referenced"
    if name.startswith("RI_ConstraintTrigger_c_"):
        return "referencing"
    if fk is not None and relation is not None:
        if relation == fk.referenced_table.rpartition(".")[2]:
            return "referenced"
        if relation == fk.table.rpartition(".")[2]:
            return "referencing"
    # Text EXPLAIN without VERBOSE names only the constraint: the statement tells.
    writer = modify_table_on(plan, relation)
    if writer is not None and writer.operation == "Delete":
        return "referenced"  # check triggers never fire on DELETE
    if writer is not None and writer.operation == "Insert":
        return "referencing"  # action triggers never fire on INSERT
    return "unknown"


def _fk_advice(fk: ForeignKeyFacts | None, relation: str, side: Side) -> tuple[str, str | None]:
    """The end of the message, and the index to create when one is missing."""
    if side == "referencing":
        return (
            f"each row written to {relation} looks its key up in the referenced table; the "
            f"time grows with the rows written (batch them, or load before adding the key)",
            None,
        )
    if fk is None:
        hedge = "" if side == "referenced" else f"if {relation} is the referenced table, "
        return (
            f"{hedge}each row deleted or re-keyed in {relation} searches the referencing "
            f"table, and an index on its referencing columns usually removes this time",
            None,
        )
    columns = ", ".join(fk.columns)
    if fk.index is None:
        ddl = f"CREATE INDEX ON {fk.table} ({columns})"
        return (
            f"each row deleted or re-keyed in {fk.referenced_table} searches {fk.table} "
            f"({columns}), which has no index starting with those columns: {ddl}",
            ddl,
        )
    return (
        f"{fk.table} ({columns}) is indexed by {fk.index}, so the time goes into the rows it "
        f"finds (ON DELETE CASCADE / SET NULL work, or its own triggers)",
        None,
    )


def _timed_triggers(plan: Plan, constraints: bool) -> Iterator[Mapping[str, Any]]:
    """Triggers with a time (TIMING OFF prints calls only), constraint triggers or the others."""
    if not plan.analyzed or not plan.total_ms:
        return
    for trigger in plan.triggers:
        if number(trigger.get("Time")) is None:
            continue
        if (_text(trigger, "Constraint Name") is not None) == constraints:
            yield trigger


def check_fk(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    """One finding per constraint trigger that takes a large share of the execution."""
    execution = plan.total_ms or 0.0
    for trigger in _timed_triggers(plan, constraints=True):
        time_ms = number(trigger.get("Time")) or 0.0
        calls = number(trigger.get("Calls"))
        constraint = _text(trigger, "Constraint Name") or "?"
        relation = _text(trigger, "Relation")
        name = _text(trigger, "Trigger Name")
        trigger_share = share(time_ms, execution)
        if time_ms < MIN_MS or trigger_share < MIN_SHARE:
            continue
        fk = context.foreign_keys.get(constraint)
        writer = modify_table_on(plan, relation)
        if relation is None and writer is not None:
            relation = writer.relation
        side = _side(plan, trigger, relation, fk)
        advice, ddl = _fk_advice(fk, relation or "the table", side)
        per_call = f" ({time_ms / calls:,.3f} ms per call)" if calls else ""
        count = f" over {calls:,.0f} calls{per_call}" if calls is not None else ""
        yield Finding(
            rule=FK_ID,
            severity=severity_for_share(trigger_share),
            message=(
                f"Foreign key trigger for constraint {constraint} took {time_ms:,.1f} ms"
                f"{count}, {trigger_share:.0%} of the {execution:,.1f} ms execution: {advice}"
            ),
            node_path=writer.path if writer is not None else None,
            table=fk.table if fk is not None and side != "referencing" else None,
            potential_ms=min(time_ms, execution),
            details={
                "constraint": constraint,
                "trigger": name,
                "relation": relation,
                "side": side,
                "time_ms": time_ms,
                "calls": calls,
                "share_of_total": trigger_share,
                "referencing_table": fk.table if fk else None,
                "referencing_columns": list(fk.columns) if fk else None,
                "referenced_table": fk.referenced_table if fk else None,
                "existing_index": fk.index if fk else None,
                "index_ddl": ddl,
            },
        )


def check_other(plan: Plan, context: RuleContext) -> Iterator[Finding]:
    """One finding for all other triggers together, when they take a large share."""
    execution = plan.total_ms or 0.0
    triggers = [
        (
            _text(t, "Trigger Name") or "?",
            _text(t, "Relation"),
            number(t.get("Time")) or 0.0,
            number(t.get("Calls")),
        )
        for t in _timed_triggers(plan, constraints=False)
    ]
    total = sum(t[2] for t in triggers)
    total_share = share(total, execution)
    if total < MIN_MS or total_share < MIN_SHARE:
        return
    triggers.sort(key=lambda t: -t[2])
    listed = ", ".join(
        f"{name}{f' on {relation}' if relation else ''} {ms:,.1f} ms"
        + (f" ({calls:,.0f} calls)" if calls is not None else "")
        for name, relation, ms, calls in triggers
    )
    relations = {relation for _, relation, _, _ in triggers}
    writer = modify_table_on(plan, relations.pop() if len(relations) == 1 else None)
    yield Finding(
        rule=TRIGGERS_ID,
        severity=severity_for_share(total_share),
        message=(
            f"Triggers took {total:,.1f} ms, {total_share:.0%} of the {execution:,.1f} ms "
            f"execution ({listed}): the time is in the trigger functions, which EXPLAIN does "
            f"not show; time their queries (auto_explain.log_nested_statements)"
        ),
        node_path=writer.path if writer is not None else None,
        potential_ms=min(total, execution),
        details={
            "time_ms": total,
            "share_of_total": total_share,
            "triggers": [
                {"name": name, "relation": relation, "time_ms": ms, "calls": calls}
                for name, relation, ms, calls in triggers
            ],
        },
    )
