"""Capture: the in-app capture's JSONL file (``explainer-capture`` version 1).

Hand-written records, one per contract field, read by the reader and by ``read_input``
(detection, compressed files, stdin): what each becomes in a ``CapturedQuery``, what is
counted as skipped, and the pool records handed to the connection activity.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from explainer.capture import CapturedQuery, CaptureStats, open_input, read_input
from explainer.capture.app_jsonl import (
    EMPTY_MANY,
    FAILED,
    MALFORMED,
    AppCaptureReader,
    sniff,
)
from explainer.capture.sqlalchemy_log import SqlAlchemyLogReader
from explainer.workload import build_workload
from explainer.workload.model import MAX_LOCATIONS, QueryGroup

HEADER: dict[str, Any] = {
    "explainer_capture": 1,
    "ts": "2026-12-06T18:00:00.000001+00:00",
    "pid": 4242,
    "dialect": "postgresql",
    "driver": "psycopg",
    "paramstyle": "pyformat",
    "pool": {
        "class": "QueuePool",
        "size": 5,
        "max_overflow": 10,
        "timeout": 30.0,
        "recycle": -1,
        "pre_ping": False,
    },
}


def statement(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "statement",
        "ts": "2026-12-06T18:00:00.123456+00:00",
        "ms": 1.234,
        "sql": "SELECT books.id FROM books WHERE books.author_id = %(param_1)s",
        "params": {"param_1": "42"},
        "many": False,
        "redacted": False,
        "conn": "4242.3",
        "tx": "4242.3#7",
        "request": "req-1",
        "site": {"file": "app/views.py", "line": 42, "function": "list_authors"},
    }
    record.update(fields)
    return record


def lines(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) + "\n" for r in records]


def read(*records: object) -> tuple[list[CapturedQuery], CaptureStats]:
    reader = AppCaptureReader(lines(*records), "capture.jsonl")
    return list(reader), reader.stats


def test_a_statement_record_becomes_one_query_with_every_field() -> None:
    queries, stats = read(HEADER, statement())
    assert stats.skipped == 0 and stats.queries == 1 and stats.lines_read == 2
    [query] = queries
    assert query.sql == "SELECT books.id FROM books WHERE books.author_id = $1"
    assert query.parameters == ("42",)
    assert query.replayable is True
    assert query.duration_ms == 1.234
    assert query.timestamp == "2026-12-06T18:00:00.123456+00:00"
    assert (query.session, query.transaction, query.request) == ("4242.3", "4242.3#7", "req-1")
    assert query.location == "app/views.py:42"
    assert (query.source, query.line) == ("capture.jsonl", 2)
    assert query.calls == 1


def test_placeholders_and_values_are_the_echo_log_readers() -> None:
    """The same statement and values, from an echo log and from the capture: one text,
    one set of values (the two readers share the placeholder code)."""
    sql = "SELECT * FROM t WHERE a = %(a)s AND b = %(b)s AND a < %(a)s AND note LIKE 'x%%'"
    echo = SqlAlchemyLogReader(
        [
            f"2026-11-22 01:02:03,456 INFO sqlalchemy.engine.Engine {sql}",
            "2026-11-22 01:02:03,456 INFO sqlalchemy.engine.Engine "
            "[generated in 0.0001s] {'a': 5, 'b': None}",
        ]
    )
    [from_echo] = list(echo)
    [from_capture], _ = read(statement(sql=sql, params={"a": "5", "b": None}))
    assert from_capture.sql == from_echo.sql
    assert from_capture.sql == (
        "SELECT * FROM t WHERE a = $1 AND b = $2 AND a < $1 AND note LIKE 'x%'"
    )
    assert from_capture.parameters == from_echo.parameters == ("5", None)


def test_positional_and_dollar_parameters() -> None:
    [psycopg_format], _ = read(statement(sql="SELECT %s::int + %s", params=["1", "2"]))
    assert (psycopg_format.sql, psycopg_format.parameters) == ("SELECT $1::int + $2", ("1", "2"))
    [asyncpg], _ = read(statement(sql="SELECT $1::INTEGER, $2", params=["7", None]))
    assert (asyncpg.sql, asyncpg.parameters) == ("SELECT $1::INTEGER, $2", ("7", None))


def test_executemany_is_one_query_per_parameter_set() -> None:
    queries, stats = read(
        statement(
            sql="INSERT INTO books (title, author_id) VALUES (%(title)s, %(author_id)s)",
            params=[
                {"title": "A", "author_id": "1"},
                {"title": "B", "author_id": "2"},
                {"title": "C", "author_id": None},
            ],
            many=True,
            ms=3.0,
        )
    )
    assert stats.queries == 3
    assert [q.sql for q in queries] == ["INSERT INTO books (title, author_id) VALUES ($1, $2)"] * 3
    assert [q.parameters for q in queries] == [("A", "1"), ("B", "2"), ("C", None)]
    assert all(q.line == 1 and q.location == "app/views.py:42" for q in queries)
    empty, stats = read(statement(params=[], many=True))
    assert empty == [] and stats.skip_reasons == {EMPTY_MANY: 1}


def test_redacted_values_are_not_kept_and_not_replayable() -> None:
    [query], stats = read(statement(params={"param_1": None}, redacted=True))
    assert stats.skipped == 0
    assert query.parameters == ()
    assert query.replayable is False
    assert query.sql == "SELECT books.id FROM books WHERE books.author_id = $1"


def test_without_site_or_values() -> None:
    [query], _ = read(statement(site=None, request=None, tx=None, params=None, sql="SELECT 1"))
    assert (query.location, query.request, query.transaction) == (None, None, None)
    assert query.parameters == () and query.replayable is True
    [missing], _ = read(statement(params=None))  # placeholders without values
    assert missing.replayable is False
    [odd], _ = read(statement(site={"file": "app.py", "line": "x"}))
    assert odd.location is None


def test_malformed_lines_are_counted_and_reading_goes_on() -> None:
    queries, stats = read(
        HEADER,
        "not json at all\n",
        '{"type": "statement", "sql": "SELECT 1", \n',  # cut short
        "[1, 2, 3]\n",
        statement(sql=None),
        statement(params="42"),
        statement(params={"a": "1"}, many=True),
        {"type": "pool", "ts": "2026-12-06T18:00:00+00:00"},  # no event
        "\n",
        statement(sql="SELECT 2"),
    )
    assert [q.sql for q in queries] == ["SELECT 2"]
    assert stats.skip_reasons == {MALFORMED: 7}
    assert stats.lines_read == 10


def test_failed_statements_are_skipped_with_their_reason() -> None:
    queries, stats = read(statement(error='UndefinedTable: relation "bookz" does not exist'))
    assert queries == [] and stats.skip_reasons == {FAILED: 1}


def test_unknown_keys_and_record_types_are_ignored() -> None:
    queries, stats = read(
        {**HEADER, "future": {"nested": True}},
        {"type": "span", "name": "GET /authors"},
        statement(extra="ignored", site={"file": "a.py", "line": 3, "column": 9}),
    )
    assert stats.skipped == 0
    assert [q.location for q in queries] == ["a.py:3"]


def test_pool_records_and_headers_reach_the_connection_activity() -> None:
    pool = {"type": "pool", "ts": "2026-12-06T18:00:01+00:00", "conn": "4242.3"}
    _, stats = read(
        HEADER,
        {**pool, "event": "connect"},
        {**pool, "event": "checkout", "wait_ms": 12.5, "checked_out": 6, "overflow": 1},
        {**pool, "event": "checkin", "checked_out": 5, "overflow": 1},
        {**pool, "event": "checkout", "wait_ms": 0.1, "checked_out": 6, "request": "r"},
        {**HEADER, "pid": 4243, "pool": None},
    )
    activity = stats.activity
    assert activity.pool_events == {"connect": 1, "checkout": 2, "checkin": 1}
    assert (activity.waits, activity.wait_ms_max) == (1, 12.5)
    assert (activity.peak_checked_out, activity.peak_overflow) == (6, 1)
    assert (activity.pool_configs, activity.null_pools) == (2, 1)
    assert activity.pool == HEADER["pool"]
    assert stats.queries == 0 and stats.skipped == 0


def test_sniff_recognises_a_header_or_a_statement_and_nothing_else() -> None:
    assert sniff(lines(HEADER))
    assert sniff(["garbage\n", *lines(statement())])
    assert not sniff(['{"timestamp": "2026-01-01", "pid": 1, "message": "statement: x"}\n'])
    assert not sniff(["SELECT 1;\n", "{not json\n"])


def test_read_input_detects_it_and_reads_compressed_files_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "".join(lines(HEADER, statement(), statement(params={"param_1": "7"})))
    plain = tmp_path / "capture.log"
    plain.write_text(text)
    queries, stats = read_input(str(plain))
    assert [q.parameters for q in queries] == [("42",), ("7",)]
    assert stats.activity.pool_configs == 1
    packed = tmp_path / "capture.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    queries, _ = read_input(str(packed))
    assert [q.source for q in queries] == [str(packed)] * 2
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    with open_input("-") as (stream, stream_stats):
        assert [q.location for q in stream] == ["app/views.py:42"] * 2
    assert stream_stats.queries == 2 and stream_stats.activity.pool_configs == 1
    # Named explicitly, and chosen by its extension when the first lines do not say.
    queries, _ = read_input(str(plain), log_format="capture")
    assert len(queries) == 2
    late = tmp_path / "late.jsonl"
    late.write_text("\n" * 25 + text)
    assert len(read_input(str(late))[0]) == 2


# -- what the workload keeps of call sites and requests ---------------------------------


def test_the_workload_keeps_each_statements_call_site_and_request() -> None:
    queries, _ = read(
        statement(conn="1.1", site={"file": "a.py", "line": 1}, request="r1"),
        statement(conn="1.1", site=None, request=None, sql="SELECT 1 FROM authors"),
        statement(conn="1.1", site={"file": "a.py", "line": 2}, request="r2"),
        statement(conn="1.2", site={"file": "a.py", "line": 1}, request="r1"),
    )
    workload = build_workload(queries, keep_order=True)
    first, second = workload.traces["1.1"], workload.traces["1.2"]
    assert [first.site_of(s) for s in range(3)] == ["a.py:1", None, "a.py:2"]
    assert [first.request_of(s) for s in range(3)] == ["r1", None, "r2"]
    assert (second.site_of(0), second.request_of(0)) == ("a.py:1", "r1")
    assert (workload.sites, workload.requests) == (["a.py:1", "a.py:2"], ["r1", "r2"])
    [lookup] = [g for g in workload.groups if "books" in g.example.sql]
    assert lookup.ranked_locations() == [("a.py:1", 2), ("a.py:2", 1)]
    assert lookup.location == "a.py:1"

    # A log gives none: no arrays, no tables.
    plain = build_workload([CapturedQuery("SELECT 1 FROM t", session="s")] * 3, keep_order=True)
    assert plain.traces["s"].sites is None and plain.traces["s"].requests is None
    assert plain.traces["s"].site_of(2) is None and plain.sites == []

    # Bounded per group, and merged as if read in one piece.
    group = QueryGroup("f", CapturedQuery("SELECT 1"))
    for line in range(MAX_LOCATIONS + 3):
        group.add(CapturedQuery("SELECT 1", location=f"b.py:{line}"))
    assert len(group.ranked_locations()) == MAX_LOCATIONS
    other = QueryGroup("f", CapturedQuery("SELECT 1"))
    for _ in range(5):
        other.add(CapturedQuery("SELECT 1", location="b.py:3"))
    group.merge(other)
    assert group.ranked_locations()[0] == ("b.py:3", 6)
