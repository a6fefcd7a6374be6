"""Caching candidates (explainer.advise.caching): which repeated reads a cache would answer,
with exact figures, and an analysis against a real server whose counters say which table
is written a lot."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from explainer.advise.caching import (
    CACHING_RULES,
    Thresholds,
    find_caching,
    tables_text,
)
from explainer.capture.model import CapturedQuery
from explainer.cli import main
from explainer.db.catalog import TableActivity
from explainer.workload import build_workload
from explainer.workload.model import Workload

LOOKUP = "SELECT name, currency FROM countries WHERE code = $1"
START = datetime(2026, 12, 6, 18, 0, 0, tzinfo=UTC)


def stamp(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(sep=" ", timespec="milliseconds")


def q(
    sql: str,
    *values: str,
    session: str = "s1",
    at: float = 0.0,
    request: str | None = None,
    ms: float | None = 2.0,
    location: str | None = None,
    transaction: str | None = None,
) -> CapturedQuery:
    return CapturedQuery(
        sql,
        duration_ms=ms,
        session=session,
        timestamp=stamp(at),
        parameters=tuple(values),
        request=request,
        location=location,
        transaction=transaction,
    )


def workload(queries: list[CapturedQuery]) -> Workload:
    return build_workload(queries, keep_order=True)


def per_request(sql: str, values: list[str], **kwargs: object) -> list[CapturedQuery]:
    """One execution per request, one second apart, on one connection."""
    return [
        q(sql, value, request=f"req-{n}", at=float(n), **kwargs)  # type: ignore[arg-type]
        for n, value in enumerate(values)
    ]


def test_exact_hit_rate_and_saving_across_requests() -> None:
    values = ["FR"] * 12 + ["DE"] * 8
    result = find_caching(workload(per_request(LOOKUP, values, location="app/views.py:42", ms=2.5)))
    assert [r.reason for r in result.refused] == []
    [candidate] = result.candidates
    assert candidate.calls == 20
    assert candidate.distinct_values == 2
    assert candidate.hit_rate == pytest.approx(1 - 2 / 20)  # 0.9
    assert candidate.saved_ms == pytest.approx(0.9 * 20 * 2.5)  # 45 ms of 50
    assert candidate.shared_hits == 18  # each request after the first of its value
    assert candidate.contexts == 20
    assert candidate.context_kind == "request"
    # 20 calls within 20 s: a 300 s TTL loses nothing.
    assert candidate.ttl_hit_rate == pytest.approx(0.9)
    assert candidate.sites == ("app/views.py:42",)
    assert [t.name for t in candidate.tables] == ["countries"]
    assert not candidate.writes_known
    assert "write rate unknown" in tables_text(candidate)
    assert "INSERT, UPDATE or DELETE on countries" in candidate.invalidation
    assert candidate.function == "countries_by_code"
    assert candidate.parameters == ("code",)
    lru, flask, redis = candidate.sketches
    assert "countries_by_code_cache = TTLCache(maxsize=1024, ttl=300)" in lru.code
    assert "@cached(countries_by_code_cache)" in lru.code
    assert "countries_by_code_cache.clear()" in lru.code
    assert "def countries_by_code(code):" in lru.code
    assert "WHERE code = :code" in lru.code
    assert "@cache.memoize(timeout=300)" in flask.code
    assert "cache.delete_memoized(countries_by_code)" in flask.code
    assert f'f"explainer:{candidate.group.fingerprint[:16]}:{{code}}"' in redis.code
    assert "r.setex(key, 300," in redis.code
    assert "r.delete(key)" in redis.code
    for sketch in candidate.sketches:
        compile(sketch.code, sketch.title, "exec")  # the sketches are valid Python


def test_ttl_hit_rate_counts_entries_that_expired() -> None:
    # One value, every 10 s, with a 15 s TTL: the entry filled at 0 s serves 10 s, then
    # expires; 20 s misses and fills, 30 s hits... half the calls after the first.
    queries = [q(LOOKUP, "FR", request=f"r{n}", at=10.0 * n) for n in range(10)]
    result = find_caching(workload(queries), thresholds=Thresholds(ttl_s=15))
    [candidate] = result.candidates
    assert candidate.hit_rate == pytest.approx(0.9)
    assert candidate.ttl_hit_rate == pytest.approx(5 / 10)  # hits at 10, 30, 50, 70, 90 s


def test_repeats_within_one_request_are_not_a_shared_cache() -> None:
    # 20 executions with the same value, all in one request: reuse the result there.
    queries = [q(LOOKUP, "FR", request="req-1", at=n * 0.01) for n in range(20)]
    result = find_caching(workload(queries))
    assert result.candidates == []
    assert result.refused == []


def test_repeats_within_a_request_count_once_per_request() -> None:
    # 6 requests, each running the lookup for FR three times: an unbounded cache answers
    # 17 of 18, but only 5 of those hits come from another request.
    queries = [
        q(LOOKUP, "FR", request=f"req-{r}", at=r * 5.0 + n * 0.01)
        for r in range(6)
        for n in range(3)
    ]
    [candidate] = find_caching(workload(queries)).candidates
    assert candidate.calls == 18
    assert candidate.hit_rate == pytest.approx(1 - 1 / 18)
    assert candidate.shared_hits == 5
    assert candidate.contexts == 6
    # One request fewer: 4 shared hits, under the threshold of 5.
    fewer = [c for c in queries if c.request != "req-5"]
    assert find_caching(workload(fewer)).candidates == []


def test_request_windows_stand_for_requests_in_server_logs() -> None:
    # No request ids (a server log): one backend runs the lookup every 3 s (each call its
    # own request window), and a burst of 5 within 100 ms counts as one window.
    queries = [q(LOOKUP, "FR", at=3.0 * n) for n in range(10)]
    queries += [q(LOOKUP, "FR", at=40.0 + 0.02 * n) for n in range(5)]
    [candidate] = find_caching(workload(queries)).candidates
    assert candidate.context_kind == "request window"
    assert candidate.calls == 15
    assert candidate.contexts == 11
    assert candidate.shared_hits == 10


def test_too_few_calls_or_a_low_hit_rate_is_no_candidate() -> None:
    assert find_caching(workload(per_request(LOOKUP, ["FR"] * 9))).candidates == []
    # 20 calls over 11 values: hit rate 45% < 50%.
    values = ["FR"] * 10 + [f"C{n}" for n in range(10)]
    assert find_caching(workload(per_request(LOOKUP, values))).candidates == []


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (
            "SELECT id FROM events WHERE kind = $1 AND created_at > now() - interval '1 day'",
            "it calls now()",
        ),
        ("SELECT id FROM events WHERE kind = $1 ORDER BY random() LIMIT 1", "it calls random()"),
        (
            "SELECT id FROM events WHERE kind = $1 AND created_at > CURRENT_DATE",
            "it reads CURRENT_DATE",
        ),
        ("SELECT id FROM events WHERE kind = $1 FOR UPDATE", "it locks rows (FOR UPDATE/SHARE)"),
        ("SELECT id FROM events WHERE kind = $1 FOR SHARE SKIP LOCKED", "it locks rows"),
        (
            "WITH d AS (DELETE FROM events WHERE kind = $1 RETURNING id) SELECT count(*) FROM d",
            "it writes (a data-modifying CTE)",
        ),
    ],
)
def test_uncacheable_reads_are_refused(sql: str, reason: str) -> None:
    result = find_caching(workload(per_request(sql, ["view"] * 12)))
    assert result.candidates == []
    [refusal] = result.refused
    assert refusal.reason.startswith(reason)


def test_a_function_the_server_declares_volatile_is_refused() -> None:
    sql = "SELECT id FROM events WHERE owner = next_owner($1)"
    assert len(find_caching(workload(per_request(sql, ["x"] * 12))).candidates) == 1
    result = find_caching(
        workload(per_request(sql, ["x"] * 12)), volatile=frozenset({"next_owner"})
    )
    [refusal] = result.refused
    assert refusal.reason == "it calls next_owner(), which the server declares VOLATILE"


def test_writes_and_catalog_reads_are_not_caching_questions() -> None:
    for sql in (
        "UPDATE stock SET qty = qty - 1 WHERE sku = $1",
        "SELECT relname FROM pg_class WHERE oid = $1",
        "SELECT $1::int",
    ):
        result = find_caching(workload(per_request(sql, ["1"] * 12)))
        assert (result.candidates, result.refused) == ([], [])


def activity(name: str, written: int, read: int) -> TableActivity:
    return TableActivity("public", name, 10, read, 0, 0, written, 0, 0, 100)


def test_write_counters_refuse_a_busy_table_and_keep_a_quiet_one() -> None:
    busy = "SELECT qty FROM stock WHERE sku = $1"
    queries = per_request(LOOKUP, ["FR"] * 12) + [
        q(busy, "A1", request=f"req-{n}", at=n + 0.5) for n in range(12)
    ]
    counters = {
        "countries": activity("countries", 10, 10_000),
        "stock": activity("stock", 800, 1_000),
    }
    result = find_caching(workload(queries), activity=counters, hours=2.0)
    [candidate] = result.candidates
    assert candidate.group.example.sql == LOOKUP
    assert candidate.writes_known
    [use] = candidate.tables
    assert use.write_ratio == pytest.approx(0.001)
    assert use.writes_per_hour == pytest.approx(5.0)
    assert tables_text(candidate) == "countries (10 rows written, 10,000 read, 5.0 writes/hour)"
    [refusal] = result.refused
    assert refusal.group.example.sql == busy
    assert refusal.reason == "its tables are written often: stock: 800 rows written for 1,000 read"
    # Exactly at the threshold (5 rows per 100 read) is still rarely written.
    edge = find_caching(workload(queries), activity={"stock": activity("stock", 50, 1_000)})
    assert len(edge.candidates) == 2


def test_the_rule_is_listed() -> None:
    [rule] = CACHING_RULES
    assert rule.id == "cache-candidate"
    assert "10 times" in rule.trigger and "50%" in rule.trigger


# -- against a real server --------------------------------------------------------------

SESSIONS = 40


def test_analyze_finds_the_lookup_and_refuses_the_busy_table(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE countries (code text, name text, currency text)")
        conn.execute(
            "INSERT INTO countries SELECT 'C' || i, 'Country ' || i, 'EUR'"
            " FROM generate_series(1, 98) AS i"
        )
        conn.execute(
            "INSERT INTO countries VALUES ('FR', 'France', 'EUR'), ('DE', 'Germany', 'EUR')"
        )
        conn.execute("CREATE TABLE stock (sku text, qty int)")
        conn.execute("INSERT INTO stock SELECT 'A' || i, 100 FROM generate_series(1, 10) AS i")
    lines: list[str] = []

    def run(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> None:
        began = datetime.now(UTC)
        start = time.perf_counter()
        conn.execute(sql).fetchall() if sql.startswith("SELECT") else conn.execute(sql)
        ms = (time.perf_counter() - start) * 1000
        pid = conn.info.backend_pid
        when = began.strftime("%Y-%m-%d %H:%M:%S.") + f"{began.microsecond // 1000:03d} UTC"
        lines.append(f"{when} [{pid}] LOG:  duration: {ms:.3f} ms  statement: {sql}")

    lookup = "SELECT name, currency FROM countries WHERE code = '{}'"
    busy = "SELECT qty FROM stock WHERE sku = 'A1'"
    for n in range(SESSIONS):  # one web request each, on its own connection
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            run(conn, lookup.format("FR" if n % 2 else "DE"))
            run(conn, busy)
            conn.execute("SELECT pg_stat_force_next_flush()")
    with psycopg.connect(db_dsn, autocommit=True) as writer:
        for _ in range(100):  # every row of stock, 100 times: written as much as read
            run(writer, "UPDATE stock SET qty = qty + 1")
        writer.execute("SELECT pg_stat_force_next_flush()")
    # The counters reach pg_stat_user_tables when each backend flushes them.
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for _ in range(100):
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT sum(seq_tup_read) FILTER (WHERE relname = 'countries'),"
                " sum(n_tup_upd) FILTER (WHERE relname = 'stock') FROM pg_stat_user_tables"
            ).fetchone()
            assert row is not None
            if (row[0] or 0) >= SESSIONS * 100 and (row[1] or 0) >= 1000:
                break
            time.sleep(0.1)
    log = tmp_path / "postgresql.log"
    log.write_text("\n".join(lines) + "\n")

    code = main(["analyze", "--dsn", db_dsn, "--log", str(log), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [candidate] = report["caching"]
    assert candidate["sql"] == lookup.format("FR") or candidate["sql"] == lookup.format("DE")
    assert candidate["calls"] == SESSIONS
    assert candidate["distinct_values"] == 2
    assert candidate["hit_rate"] == round(1 - 2 / SESSIONS, 4)
    assert candidate["context_kind"] == "request window"
    assert candidate["contexts"] == SESSIONS
    assert candidate["writes_known"] is True
    [table] = candidate["tables"]
    assert table["table"] == "countries"
    assert table["rows_written"] == 100  # the load: nothing wrote it since
    assert table["rows_read"] >= SESSIONS * 100
    assert candidate["invalidated_by"] == ["countries"]
    assert candidate["saved_ms"] == pytest.approx(
        (1 - 2 / SESSIONS) * candidate["total_ms"], abs=0.002
    )
    [refused] = report["caching_refused"]
    assert refused["sql"] == busy
    assert refused["reason"].startswith("its tables are written often: stock: ")

    # --redact: the values (in the example, the sketches' keys, the plans) are gone.
    assert "'FR'" in json.dumps(report) or "'DE'" in json.dumps(report)
    code = main(["analyze", "--dsn", db_dsn, "--log", str(log), "--format", "json", "--redact"])
    redacted = capsys.readouterr().out
    assert code == 0
    assert json.loads(redacted)["caching"][0]["calls"] == SESSIONS
    for value in ("FR", "DE", "France", "Germany"):
        assert re.search(rf"\b{value}\b", redacted) is None, value
