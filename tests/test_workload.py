"""Workload: fingerprints, utility detection, grouping and ranking."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from explainer.capture import CapturedQuery, read_input
from explainer.workload import (
    DurationSample,
    QueryGroup,
    WorkloadBuilder,
    build_workload,
    fingerprint,
    is_utility,
)
from explainer.workload.fingerprint import normalise_text, text_fingerprint
from explainer.workload.model import timestamp_ms

CORPUS = Path(__file__).parents[1].parent / "shared" / "corpus" / "logs" / "generated"

SAME_SHAPE = [
    pytest.param("select * from t where a = 1", "SELECT * FROM t WHERE a = 42", id="literal"),
    pytest.param("select * from t where a = 'x'", "select * from t where a = $1", id="param"),
    pytest.param(
        "select * from t where a in (1, 2, 3)", "select * from t where a in (7)", id="in-list"
    ),
    pytest.param(
        "select * from t where a in ($1, $2)",
        "select * from t where a in ($1, $2, $3, $4, $5)",
        id="in-list-params",
    ),
    pytest.param(
        "select  *\n from t /* comment */ where a=1", "select * from t where a = 2", id="layout"
    ),
    pytest.param("select * from t limit 5", "select * from t limit $1", id="limit"),
    pytest.param("insert into t values (1), (2)", "insert into t values (3)", id="values-rows"),
    pytest.param("ROLLBACK;", "rollback", id="semicolon-and-case"),
    pytest.param(
        "select * from t where a = 1 and b = 'x",  # unterminated: text fallback
        "SELECT * FROM t WHERE a = 22 AND b = 'yy",
        id="fallback-literals",
    ),
    pytest.param(
        "select * from t where a in (1, 2, 3) and :flag",  # psql variable: text fallback
        "select * from t where a in (4) and :flag",
        id="fallback-in-list",
    ),
]

DIFFERENT_SHAPE = [
    pytest.param("select * from t where a = 1", "select * from u where a = 1", id="table"),
    pytest.param("select * from t where a = 1", "select * from t where b = 1", id="column"),
    pytest.param("select a from t", "select b from t", id="select-list"),
    pytest.param("select * from t where a = 1", "select * from t where a > 1", id="operator"),
    pytest.param("select * from t where a = 1 :x", "select * from u where a = 1 :x", id="fallback"),
]


@pytest.mark.parametrize(("left", "right"), SAME_SHAPE)
def test_same_shape_same_fingerprint(left: str, right: str) -> None:
    assert fingerprint(left) == fingerprint(right)


@pytest.mark.parametrize(("left", "right"), DIFFERENT_SHAPE)
def test_different_shape_different_fingerprint(left: str, right: str) -> None:
    assert fingerprint(left) != fingerprint(right)


def test_fingerprint_uses_pglast_when_it_parses() -> None:
    sql = "select * from t where a = 1"
    assert fingerprint(sql) != text_fingerprint(sql)
    assert fingerprint("selec * from t") == text_fingerprint("selec * from t")
    assert len(fingerprint(sql)) == len(text_fingerprint(sql)) == 16


@pytest.mark.parametrize(
    ("sql", "normalised"),
    [
        ("SELECT * FROM t WHERE a = 1 AND b = 'x' -- c", "select * from t where a = ? and b = ?"),
        ("select $$a;b$$, E'\\n', $1, 2.5e3, t1.c", "select ?, ?, ?, ?, t1.c"),
        ("select * from t where a in (1,  2, 3);", "select * from t where a in (?)"),
        ("insert into t values (1, 'a'), (2, 'b')", "insert into t values (?)"),
    ],
)
def test_normalise_text(sql: str, normalised: str) -> None:
    assert normalise_text(sql) == normalised


@pytest.mark.parametrize(
    ("sql", "utility"),
    [
        ("BEGIN", True),
        ("commit", True),
        ("ROLLBACK", True),
        ("SAVEPOINT s1", True),
        ("SET search_path = app", True),
        ("SHOW standard_conforming_strings", True),
        ("DEALLOCATE ALL", True),
        ("CREATE TABLE x (a int)", True),
        ("", True),
        ("-- only a comment", True),
        ("select version()", True),
        ("select current_schema()", True),
        ("SELECT t.oid FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid", True),
        ("select relname from pg_catalog.pg_class", True),
        ("select * from information_schema.tables", True),
        ("BEGIN; COMMIT", True),
        ("select * from orders where id = 1", False),
        ("select * from orders o join pg_catalog.pg_class c on c.oid = o.id", False),
        ("with x as (select 1) select * from x join orders on true", False),
        ("update orders set a = 1", False),
        ("insert into orders values (1)", False),
        ("delete from orders", False),
        ("BEGIN; select * from orders", False),
        # unparseable: decided by the first keyword
        ("rollback to savepoint :x", True),
        ("set :x = 1", True),
        ("select * from orders where a = :x", False),
        ("with y as (select :x) select * from y", False),
    ],
)
def test_is_utility(sql: str, utility: bool) -> None:
    assert is_utility(sql) is utility


def q(
    sql: str,
    ms: float | None = None,
    session: str | None = None,
    ts: str | None = None,
    params: tuple[str | None, ...] = (),
) -> CapturedQuery:
    return CapturedQuery(sql=sql, duration_ms=ms, session=session, timestamp=ts, parameters=params)


def test_group_statistics() -> None:
    workload = build_workload(
        [
            q("select * from t where a = 1", 2.0, "10", "2026-01-01 00:00:02 UTC"),
            q("select * from t where a = 2", 10.0, "11", "2026-01-01 00:00:01 UTC"),
            q("select * from t where a = 3", None, "10", None),
            q("select * from t where a = 1", 3.0, "12", "2026-01-01 00:00:03 UTC"),
        ]
    )
    (group,) = workload.groups
    assert group.calls == 4
    assert group.timed_calls == 3
    assert group.total_ms == 15.0
    assert group.mean_ms == 5.0
    assert group.max_ms == 10.0
    assert group.p95_ms == 10.0
    assert group.example.sql == "select * from t where a = 2"  # the slowest
    assert (group.first_seen, group.last_seen) == (
        "2026-01-01 00:00:01 UTC",
        "2026-01-01 00:00:03 UTC",
    )
    assert group.sessions == {"10", "11", "12"}
    assert [s.sql[-1] for s in group.samples] == ["1", "2", "3"]  # distinct texts only
    assert not group.is_utility


def test_untimed_group() -> None:
    (group,) = build_workload([q("select * from t"), q("SELECT * FROM t")]).groups
    assert (group.total_ms, group.mean_ms, group.max_ms, group.p95_ms) == (None,) * 4
    assert group.example.sql == "select * from t"  # the first
    assert group.calls == 2


def test_samples_bounded_and_distinct_by_parameters() -> None:
    sql = "select * from t where a = $1"
    queries = [q(sql, 1.0, params=(str(i % 7),)) for i in range(50)]
    (group,) = build_workload(queries).groups
    assert [s.parameters for s in group.samples] == [("0",), ("1",), ("2",), ("3",), ("4",)]


def test_ordering_heaviest_first_and_utility_aside() -> None:
    workload = build_workload(
        [
            q("select * from few_slow", 100.0),
            q("select * from many_fast", 1.0),
            *[q("select * from many_fast", 1.0)] * 9,
            q("select * from untimed_many"),
            q("select * from untimed_many"),
            q("select * from untimed_once"),
            q("select * from heaviest", 500.0),
            q("BEGIN", 900.0),
            q("SET x = 1"),
        ]
    )
    assert [g.example.sql for g in workload.groups] == [
        "select * from heaviest",
        "select * from few_slow",
        "select * from many_fast",
        "select * from untimed_many",
        "select * from untimed_once",
    ]
    assert [g.example.sql for g in workload.utility] == ["BEGIN", "SET x = 1"]
    assert [g.example.sql for g in workload.top(2)] == [
        "select * from heaviest",
        "select * from few_slow",
    ]
    assert workload.top(0) == []
    assert workload.calls == 17


def test_build_workload_consumes_an_iterator() -> None:
    workload = build_workload(iter([q("select 1 from t", 1.0), q("select 2 from t", 2.0)]))
    assert workload.groups[0].calls == 2


@pytest.mark.parametrize(
    ("values", "p95"),
    [
        ([], None),
        ([5.0], 5.0),
        ([float(i) for i in range(1, 21)], 19.0),
        ([float(i) for i in range(1, 101)], 95.0),
    ],
)
def test_p95_nearest_rank(values: list[float], p95: float | None) -> None:
    sample = DurationSample()
    for value in values:
        sample.add(value)
    assert sample.percentile(95) == p95


def test_reservoir_is_bounded() -> None:
    sample = DurationSample(capacity=100)
    for i in range(10_000):
        sample.add(float(i))
    assert len(sample.values) == 100
    assert sample.seen == 10_000
    p95 = sample.percentile(95)
    assert p95 is not None and 8_500 < p95 < 10_000  # a fair sample of 0..9999


def test_corpus_workload() -> None:
    # 215 queries (see test_capture). By hand: 29 'update misc ... where id = N' are one
    # group, the heaviest by total time; BEGIN (28 calls), ROLLBACK, COMMIT, SHOW, SET-like
    # driver chatter and pg_type/pg_class lookups are utility.
    queries, _ = read_input(str(CORPUS / "pg15_stderr_lmds0_prefix-m-p-q-u-d.log"))
    workload = build_workload(queries)
    assert workload.calls == 215
    top = workload.groups[0]
    assert top.example.sql.startswith("update misc set v = 'y' where id = ")
    assert top.calls == 29
    utility = {g.example.sql: g.calls for g in workload.utility}
    assert utility["BEGIN"] == 28
    assert utility["ROLLBACK"] == 16
    assert not any(g.example.sql.startswith(("BEGIN", "COMMIT")) for g in workload.groups)


def test_session_order_is_kept_per_transaction_when_asked() -> None:
    def q(sql: str, session: str, transaction: str | None) -> CapturedQuery:
        return CapturedQuery(sql=sql, session=session, transaction=transaction)

    queries = [
        q("SELECT * FROM authors", "7", "7:1"),
        q("SELECT * FROM books WHERE author_id = 1", "7", "7:1"),
        q("SELECT 1 FROM t", "8", None),  # another session, interleaved
        q("SELECT * FROM books WHERE author_id = 2", "7", "7:1"),
        q("SELECT * FROM books WHERE author_id = 3", "7", "7:2"),
    ]
    workload = build_workload(queries, keep_order=True)
    trace = workload.traces["7"]
    shapes = [workload.shapes[i].example.sql.split(" WHERE")[0] for i in trace.steps]
    assert shapes == ["SELECT * FROM authors"] + ["SELECT * FROM books"] * 3
    assert trace.transactions == [(0, "7#1"), (3, "7#2")]  # the session's 1st and 2nd
    assert workload.traces["8"].transactions == [(0, None)]  # outside any transaction
    assert list(workload.traces["8"].steps) == [2]
    assert build_workload(queries).traces == {}  # off by default: memory is per shape only


def test_traces_stop_at_their_budget_and_count_the_rest() -> None:
    queries = [
        CapturedQuery(sql=f"SELECT * FROM books WHERE author_id = {i}", session="7")
        for i in range(10)
    ]
    builder = WorkloadBuilder(keep_order=True, max_trace_steps=4)
    builder.add_all(queries)
    workload = builder.build()
    assert len(workload.traces["7"].steps) == 4
    assert workload.untraced == 6
    assert workload.groups[0].calls == 10  # the groups count every statement


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22 01:02:03.456 UTC", "2026-11-22 01:02:03.456"),
        ("2026-11-22 01:02:03 UTC", "2026-11-22 01:02:03"),
        ("2026-11-22T01:02:03,5", "2026-11-22 01:02:03.5"),
        ("2026-11-22 01:02:03.456789", "2026-11-22 01:02:03.456"),
    ],
)
def test_timestamps_read_by_slicing_agree_with_datetime(text: str, expected: str) -> None:
    want = datetime.fromisoformat(expected).replace(tzinfo=UTC).timestamp() * 1000
    assert timestamp_ms(text) == round(want)
    assert timestamp_ms(text) == round(want)  # the second read takes the cached minute


@pytest.mark.parametrize("seed", range(5))
def test_group_add_agrees_with_the_methods_it_inlines(seed: int) -> None:
    """QueryGroup.add inlines DurationSample.add, _add_timestamp and _keep_sample for
    speed: the group must end as those methods, called one by one, leave it."""
    rng = random.Random(seed)
    queries = [
        CapturedQuery(
            sql=rng.choice(["select 1", "select 2", "select 3", "BEGIN"]),
            duration_ms=rng.choice([None, rng.random() * 10]),
            parameters=rng.choice([(), ("a",), ("b",)]),
            timestamp=rng.choice([None, f"2026-11-01 00:00:{rng.randrange(60):02d}"]),
            session=rng.choice([None, "1", "2"]),
        )
        for _ in range(300)
    ]
    group = QueryGroup("x", queries[0], durations=DurationSample(capacity=20))
    reference = DurationSample(capacity=20)
    samples: list[CapturedQuery] = []
    for query in queries:
        group.add(query)
        if query.duration_ms is not None:
            reference.add(query.duration_ms)
        if len(samples) < 5 and not any(
            (s.sql, s.parameters) == (query.sql, query.parameters) for s in samples
        ):
            samples.append(query)
    assert (group.durations.seen, group.durations.values) == (reference.seen, reference.values)
    assert reference.seen > 20  # the full reservoir's path was taken
    stamps = [query.timestamp for query in queries if query.timestamp is not None]
    assert (group.first_seen, group.last_seen) == (min(stamps), max(stamps))
    assert group.samples == samples
    timed = [query.duration_ms for query in queries if query.duration_ms is not None]
    assert group.max_ms == max(timed)
    assert group.total_ms == pytest.approx(sum(timed))
    assert group.sessions == {"1", "2"}
