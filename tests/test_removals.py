"""Indexes to remove: unused, duplicates, prefixes; never one that enforces something."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from explainer.advise.removals import find_removals
from explainer.capture import CapturedQuery
from explainer.db.catalog import IndexUsage, StatsSince
from explainer.pipeline import AnalyzeOptions, analyze_workload
from explainer.render.json import report_dict
from explainer.workload import build_workload

SINCE = StatsSince(datetime(2026, 1, 1, tzinfo=UTC), "stats_reset")


def index(
    name: str,
    *keys: str,
    scans: int = 5,
    method: str = "btree",
    unique: bool = False,
    primary: bool = False,
    constraint: str | None = None,
    predicate: str | None = None,
    include: tuple[str, ...] = (),
    valid: bool = True,
) -> IndexUsage:
    return IndexUsage(
        name=name,
        schema="public",
        table="t",
        keys=keys,
        include=include,
        method=method,
        predicate=predicate,
        is_unique=unique,
        is_primary=primary,
        is_exclusion=False,
        constraint=constraint,
        is_valid=valid,
        idx_scan=scans,
        size_bytes=8192 * len(name),
        definition=f"CREATE INDEX {name} ON public.t ({', '.join(keys)})",
    )


PK = index("t_pkey", "id", primary=True, unique=True, constraint="t_pkey", scans=0)


@pytest.mark.parametrize(
    ("indexes", "expected"),
    [
        # (a) leads (a, b): the longer one serves it.
        ([index("t_a", "a"), index("t_a_b", "a", "b")], {"t_a": ("prefix", "t_a_b")}),
        # Same keys: the less used one goes.
        (
            [index("t_a1", "a", scans=10), index("t_a2", "a", scans=3)],
            {"t_a2": ("duplicate", "t_a1")},
        ),
        # A unique index enforces something: the plain duplicate goes, never the unique one.
        (
            [index("t_a_u", "a", unique=True, scans=0), index("t_a", "a", scans=99)],
            {"t_a": ("duplicate", "t_a_u")},
        ),
        # A unique (a) before (a, b): not listed as a prefix (it enforces uniqueness of a).
        ([index("t_a_u", "a", unique=True), index("t_a_b", "a", "b")], {}),
        # PK and unique indexes are never "unused".
        ([PK, index("t_e", "e", unique=True, scans=0)], {}),
        # Never scanned.
        ([PK, index("t_c", "c", scans=0)], {"t_c": ("unused", None)}),
        # Different predicate, method, key order or direction: not the same index.
        ([index("t_a", "a"), index("t_a_p", "a", predicate="a > 0")], {}),
        ([index("t_a", "a"), index("t_a_h", "a", method="hash")], {}),
        ([index("t_b_a", "b", "a"), index("t_a_b", "a", "b")], {}),
        ([index("t_a", "a DESC"), index("t_a_b", "a", "b")], {}),
        # A GIN index's first key does not lead a multi-column index of its kind.
        ([index("t_a", "a", method="gin"), index("t_a_b", "a", "b", method="gin")], {}),
        # INCLUDE columns the longer index lacks: the shorter one allows index-only scans.
        ([index("t_a", "a", include=("x",)), index("t_a_b", "a", "b")], {}),
        (
            [index("t_a", "a", include=("b",)), index("t_a_b", "a", "b")],
            {"t_a": ("prefix", "t_a_b")},
        ),
        # An invalid index covers nothing.
        ([index("t_a", "a"), index("t_a_b", "a", "b", valid=False)], {}),
        # A chain: both shorter ones point at the longest, which is kept.
        (
            [index("t_a", "a"), index("t_a_b", "a", "b"), index("t_a_b_c", "a", "b", "c")],
            {"t_a": ("prefix", "t_a_b_c"), "t_a_b": ("prefix", "t_a_b_c")},
        ),
    ],
)
def test_removal_reasons(
    indexes: list[IndexUsage], expected: dict[str, tuple[str, str | None]]
) -> None:
    found = {r.index: (r.reason, r.covered_by) for r in find_removals(indexes, SINCE)}
    assert found == expected


def test_removal_says_since_when_and_how_to_drop() -> None:
    [removal] = find_removals([index("t_c", "c", scans=0)], SINCE)
    assert "since the statistics were reset (2026-01-01" in removal.detail
    assert removal.sql == "DROP INDEX CONCURRENTLY IF EXISTS t_c;"
    assert removal.size_bytes == 8192 * 3


def test_removals_in_the_report(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
        conn.execute(
            """
            CREATE TABLE removals_t (
                id bigint PRIMARY KEY, a integer, b integer, c integer,
                e text UNIQUE, during tstzrange
            );
            INSERT INTO removals_t
            SELECT i, i % 100, i % 7, i, md5(i::text), NULL FROM generate_series(1, 20000) AS i;
            CREATE INDEX removals_a ON removals_t (a);
            CREATE INDEX removals_a_b ON removals_t (a, b);
            CREATE INDEX removals_a_b_again ON removals_t (a, b);
            CREATE INDEX removals_c ON removals_t (c);
            CREATE UNIQUE INDEX removals_e_again ON removals_t (e);
            ALTER TABLE removals_t ADD CONSTRAINT removals_no_overlap
                EXCLUDE USING gist (during WITH &&);
            ANALYZE removals_t;
            """
        )
        # removals_c is used; removals_t_pkey, the unique and exclusion indexes are not.
        conn.execute("SET enable_seqscan = off")
        for n in range(3):
            conn.execute("SELECT * FROM removals_t WHERE c = %s", (n,)).fetchall()
        if conn.info.server_version >= 150000:
            conn.execute("SELECT pg_stat_force_next_flush()")
    workload = build_workload([CapturedQuery("SELECT count(*) FROM removals_t WHERE c = 1")])
    report = report_dict(analyze_workload(db_dsn, workload, AnalyzeOptions(verify="none")))
    removals = {r["index"]: r for r in report["removals"]}
    # The two (a, b) indexes: one is the duplicate of the other; (a) leads them.
    duplicate = next(r for r in removals.values() if r["reason"] == "duplicate")
    assert {duplicate["index"], duplicate["covered_by"]} == {"removals_a_b", "removals_a_b_again"}
    assert removals["removals_a"]["reason"] == "prefix"
    assert removals["removals_a"]["covered_by"] in {"removals_a_b", "removals_a_b_again"}
    # The one never scanned and not already listed: the surviving (a, b) index.
    kept_ab = duplicate["covered_by"]
    assert removals[kept_ab]["reason"] == "unused"
    assert "since the statistics were reset" in removals[kept_ab]["detail"]
    # Used, primary key, unique (constraint or not), exclusion: never listed.
    assert set(removals) == {"removals_a", "removals_a_b", "removals_a_b_again"}
    for r in removals.values():
        assert set(r) == {
            "index",
            "table",
            "reason",
            "covered_by",
            "size_bytes",
            "idx_scan",
            "detail",
            "definition",
            "sql",
        }
        assert r["table"] == "removals_t"
        assert r["size_bytes"] >= 8192
        assert r["sql"] == f"DROP INDEX CONCURRENTLY IF EXISTS {r['index']};"
    assert report["stats_since"]["source"] == "stats_reset"
    # Removals never appear among the suggestions.
    assert not {s["name"] for s in report["suggestions"]} & set(removals)
