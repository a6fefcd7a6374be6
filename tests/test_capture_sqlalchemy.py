"""Capture: SQLAlchemy engine logs (``echo=True`` and the ``sqlalchemy.engine`` logger).

Unit tables feed the reader hand-written log lines; parameter reprs that SQLAlchemy cuts
short are made by SQLAlchemy's own ``_repr_params`` / ``_long_statement``, so they are
exactly what a log holds. The corpus tests pin the counts of the generated logs, and the
acceptance test runs an ORM script against a real PostgreSQL and compares what this
reader finds with what the server logged.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, cast

import pytest
from sqlalchemy import ForeignKey, String, create_engine, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.sql.util import _long_statement, _repr_params

from explainer.capture import FORMATS, CapturedQuery, CaptureStats, read_input
from explainer.capture.sqlalchemy_log import (
    CUT_STATEMENT,
    ORPHAN_CONTINUATION,
    PARAMETERS_WITHOUT_STATEMENT,
    STRAY_CONTINUATION,
    UNREADABLE_PARAMETERS,
    SqlAlchemyLogReader,
    is_cut_statement,
    sniff,
)
from explainer.db.server import ThrowawayServer, find_binaries
from explainer.workload import build_workload, fingerprint, is_utility

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs" / "generated"

P = "2026-11-22 01:02:03,456 INFO sqlalchemy.engine.Engine "
"""The ``echo=True`` prefix: ``%(asctime)s %(levelname)s %(name)s %(message)s``."""


def read(*lines: str) -> tuple[list[CapturedQuery], CaptureStats]:
    reader = SqlAlchemyLogReader(list(lines))
    return list(reader), reader.stats


def read_one(*lines: str) -> CapturedQuery:
    queries, stats = read(*lines)
    assert len(queries) == 1, queries
    assert stats.skipped == 0, stats
    return queries[0]


def params_repr(parameters: object, *, multi: bool = False) -> str:
    """Parameters as SQLAlchemy logs them, truncation included."""
    return repr(_repr_params(parameters, batches=10, ismulti=multi))  # type: ignore[arg-type]


# -- parameter styles -----------------------------------------------------------------

STYLE_CASES = [
    pytest.param(
        "SELECT * FROM t WHERE a = %(a_1)s AND b = %(b_1)s",
        "[generated in 0.00012s] {'a_1': 1, 'b_1': 'x'}",
        "SELECT * FROM t WHERE a = $1 AND b = $2",
        ("1", "x"),
        id="psycopg2-pyformat",
    ),
    pytest.param(
        "SELECT * FROM t WHERE a = %(p)s OR b = %(p)s OR c = %(q)s",
        "[generated in 0.00012s] {'q': 3, 'p': 2}",
        "SELECT * FROM t WHERE a = $1 OR b = $1 OR c = $2",
        ("2", "3"),
        id="repeated-name-keeps-its-number",
    ),
    pytest.param(
        "SELECT * FROM t WHERE a = %s AND b = %s",
        "[raw sql] (1, 'x')",
        "SELECT * FROM t WHERE a = $1 AND b = $2",
        ("1", "x"),
        id="psycopg2-format",
    ),
    pytest.param(
        "SELECT * FROM t WHERE id = %(id_1)s::INTEGER",
        "[generated in 0.00012s] {'id_1': 5}",
        "SELECT * FROM t WHERE id = $1::INTEGER",
        ("5",),
        id="psycopg3-pyformat-cast",
    ),
    pytest.param(
        "SELECT * FROM t WHERE id = %s AND b = %b AND c = %t",
        "[raw sql] (1, 2, 3)",
        "SELECT * FROM t WHERE id = $1 AND b = $2 AND c = $3",
        ("1", "2", "3"),
        id="psycopg3-format-binary-text",
    ),
    pytest.param(
        "SELECT * FROM t WHERE id = $1::INTEGER AND name = $2::VARCHAR",
        "[generated in 0.00012s] (5, 'x')",
        "SELECT * FROM t WHERE id = $1::INTEGER AND name = $2::VARCHAR",
        ("5", "x"),
        id="asyncpg-numeric",
    ),
    pytest.param(
        "SELECT * FROM t WHERE name LIKE 'a%%' AND id = %(id)s",
        "[generated in 0.00012s] {'id': 1}",
        "SELECT * FROM t WHERE name LIKE 'a%' AND id = $1",
        ("1",),
        id="doubled-percent",
    ),
    pytest.param(
        "SELECT 'a%%b'",
        "[generated in 0.00012s] {}",
        "SELECT 'a%b'",
        (),
        id="doubled-percent-empty-dict",
    ),
    pytest.param(
        "SELECT '50%' WHERE id = $1",
        "[generated in 0.00012s] (1,)",
        "SELECT '50%' WHERE id = $1",
        ("1",),
        id="asyncpg-percent-untouched",
    ),
    pytest.param(
        "SELECT * FROM t WHERE a = %(a)s",
        "[generated in 0.00012s] {'a': 1, 'unused': 2}",
        "SELECT * FROM t WHERE a = $1",
        ("1",),
        id="extra-keys-ignored",
    ),
]


@pytest.mark.parametrize(("statement", "parameters", "sql", "values"), STYLE_CASES)
def test_parameter_styles(
    statement: str, parameters: str, sql: str, values: tuple[str | None, ...]
) -> None:
    query = read_one(P + statement, P + parameters)
    assert (query.sql, query.parameters, query.replayable) == (sql, values, True)
    assert query.duration_ms is None


# -- values -----------------------------------------------------------------------------

VALUE_CASES = [
    ("None", None),
    ("True", "true"),
    ("False", "false"),
    ("-3", "-3"),
    ("1.5", "1.5"),
    ("inf", "Infinity"),
    ("-inf", "-Infinity"),
    ("nan", "NaN"),
    ("'it\\'s \"quoted\"'", 'it\'s "quoted"'),
    ("'line\\nbreak'", "line\nbreak"),
    ("Decimal('1.50')", "1.50"),
    ("Decimal('NaN')", "NaN"),
    ("datetime.datetime(2026, 1, 2, 3, 4, 5)", "2026-01-02 03:04:05"),
    ("datetime.datetime(2026, 1, 2, 3, 4, 5, 123)", "2026-01-02 03:04:05.000123"),
    (
        "datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)",
        "2026-01-02 03:04:05+00:00",
    ),
    (
        "datetime.datetime(2026, 1, 2, 3, 4, 5, "
        "tzinfo=datetime.timezone(datetime.timedelta(days=-1, seconds=66600)))",
        "2026-01-02 03:04:05-05:30",
    ),
    (
        "datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=zoneinfo.ZoneInfo(key='Europe/Paris'))",
        "2026-01-02 03:04:05 Europe/Paris",
    ),
    ("datetime.date(2026, 1, 2)", "2026-01-02"),
    ("datetime.time(3, 4, 5)", "03:04:05"),
    ("datetime.timedelta(days=1, seconds=5)", "1 days 5 seconds 0 microseconds"),
    ("UUID('12345678-1234-5678-1234-567812345678')", "12345678-1234-5678-1234-567812345678"),
    ("b'\\x00\\xffA'", "\\x00ff41"),
    ("bytearray(b'\\x01')", "\\x01"),
    ("IPv4Address('10.0.0.1')", "10.0.0.1"),
    ("[1, None, 'a\"b']", '{"1",NULL,"a\\"b"}'),
    ("[[1, 2], [3, 4]]", '{{"1","2"},{"3","4"}}'),
    ("Json({'a': [1, None]})", '{"a": [1, null]}'),
    ("Range(lower=1, upper=5, bounds='[)', empty=False)", '["1","5")'),
    ("Range(empty=True)", "empty"),
]


@pytest.mark.parametrize(("logged", "text"), VALUE_CASES)
def test_values_become_postgresql_text(logged: str, text: str | None) -> None:
    query = read_one(P + "SELECT %(v)s", P + "[generated in 0.0001s] {'v': " + logged + "}")
    assert (query.parameters, query.replayable) == ((text,), True)


UNREADABLE_VALUE_CASES = [
    pytest.param("<Color.red: 'red'>", id="unknown-class-repr"),
    pytest.param("{'k': 'v'}", id="dict-json-or-hstore"),
    pytest.param("Foo(1)", id="constructor-not-allowed"),
    pytest.param("datetime.datetime(2026, 13, 1)", id="invalid-date"),
    pytest.param("bytearray(10)", id="bytearray-size-not-bytes"),
    pytest.param("1 + 1", id="expression"),
]


@pytest.mark.parametrize("logged", UNREADABLE_VALUE_CASES)
def test_unreadable_value_is_kept_as_logged_and_not_replayable(logged: str) -> None:
    query = read_one(
        P + "SELECT %(v)s, %(w)s", P + "[generated in 0.0001s] {'v': " + logged + ", 'w': 2}"
    )
    assert (query.parameters, query.replayable) == ((logged, "2"), False)


def test_reprs_are_never_evaluated(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    call = f"__import__('pathlib').Path({str(target)!r}).touch()"
    query = read_one(P + "SELECT %(v)s", P + "[generated in 0.0001s] {'v': " + call + "}")
    assert not target.exists()
    assert (query.parameters, query.replayable) == ((call,), False)


# -- badges -----------------------------------------------------------------------------

BADGES = [
    "[generated in 0.00012s]",
    "[cached since 12.3s ago]",
    "[cached since 1.234e+04s ago]",
    "[no key 0.00011s]",
    "[raw sql]",
    "[caching disabled 0.00011s]",
    "[caching disabled (some reason) 0.00011s ]",
    "[dialect postgresql+psycopg2 does not support caching 0.00011s]",
    "[unknown]",
    "[generated in 0.00026s (insertmanyvalues) 1/3 (unordered)]",
    "[insertmanyvalues 2/3 (unordered)]",
    "[insertmanyvalues 1/3 (ordered; batch not supported)]",
]


@pytest.mark.parametrize("badge", BADGES)
def test_badges_introduce_parameters_and_carry_no_duration(badge: str) -> None:
    query = read_one(P + "SELECT * FROM t WHERE id = %(id)s", P + badge + " {'id': 5}")
    assert (query.sql, query.parameters, query.duration_ms) == (
        "SELECT * FROM t WHERE id = $1",
        ("5",),
        None,
    )


# -- multi-line SQL ---------------------------------------------------------------------


def test_multi_line_statement() -> None:
    query = read_one(
        P + "SELECT books.id \n",
        "FROM books \n",
        "WHERE books.author_id = %(param_1)s\n",
        P + "[generated in 0.00016s] {'param_1': 1}\n",
    )
    assert query.sql == "SELECT books.id \nFROM books \nWHERE books.author_id = $1"
    assert (query.line, query.timestamp, query.session) == (1, "2026-11-22 01:02:03,456", "Engine")


def test_ddl_logged_with_leading_and_trailing_newlines() -> None:
    query = read_one(
        P,
        "CREATE TABLE misc (",
        "\tid SERIAL NOT NULL, ",
        "\tPRIMARY KEY (id)",
        ")",
        "",
        "",
        P + "[no key 0.00008s] {}",
    )
    assert query.sql == "CREATE TABLE misc (\n\tid SERIAL NOT NULL, \n\tPRIMARY KEY (id)\n)"


def test_records_of_other_loggers_do_not_continue_the_sql() -> None:
    query = read_one(
        P + "SELECT 1",
        "2026-11-22 01:02:03,457 INFO myapp.views handling request",
        "Traceback (most recent call last):",
        "2026-11-22 01:02:03,458 DEBUG sqlalchemy.pool.impl.QueuePool Connection checked out",
        P + "[generated in 0.0001s] {}",
    )
    assert query.sql == "SELECT 1"


# -- logging formats and sessions -------------------------------------------------------

FORMAT_CASES = [
    pytest.param("INFO:sqlalchemy.engine.Engine:", "Engine", None, id="basicConfig"),
    pytest.param(
        "2026-11-22 01:02:03,456 INFO sqlalchemy.engine.Engine.app ",
        "Engine.app",
        "2026-11-22 01:02:03,456",
        id="logging-name",
    ),
    pytest.param(
        "2026-11-22 01:02:03,456 INFO sqlalchemy.engine.base.Engine ",
        "Engine",
        "2026-11-22 01:02:03,456",
        id="sqlalchemy-1.3-logger",
    ),
    pytest.param(
        "[2026-11-22T01:02:03.456+01:00] [MainThread] sqlalchemy.engine.Engine - ",
        "Engine",
        "2026-11-22T01:02:03.456+01:00",
        id="custom-dash",
    ),
    pytest.param("sqlalchemy.engine.Engine | ", "Engine", None, id="name-pipe"),
    pytest.param("WARNING [sqlalchemy.engine.Engine] ", "Engine", None, id="bracketed-name"),
]


@pytest.mark.parametrize(("prefix", "session", "timestamp"), FORMAT_CASES)
def test_any_logging_format(prefix: str, session: str, timestamp: str | None) -> None:
    queries, stats = read(
        prefix + "BEGIN (implicit)",
        prefix + "SELECT a FROM t",
        "WHERE id = %(id_1)s",
        prefix + "[generated in 0.0001s] {'id_1': 7}",
        prefix + "COMMIT",
    )
    assert stats.skipped == 0
    assert [(q.sql, q.parameters, q.session, q.timestamp, q.transaction) for q in queries] == [
        ("SELECT a FROM t\nWHERE id = $1", ("7",), session, timestamp, f"{session}:1")
    ]


def test_sqlalchemy_1_3_parameters_without_badge() -> None:
    prefix = "2026-11-22 01:02:03,456 INFO sqlalchemy.engine.base.Engine "
    queries, stats = read(
        prefix + "SELECT a FROM t WHERE id = %(id_1)s",
        prefix + "{'id_1': 5}",
        prefix + "(SELECT 1) UNION (SELECT 2)",
        prefix + "{}",
        prefix + "INSERT INTO t (a) VALUES (%(a)s)",
        prefix + "({'a': 1}, {'a': 2})",
        prefix + "COMMIT",
    )
    assert stats.skipped == 0
    assert [(q.sql, q.parameters) for q in queries] == [
        ("SELECT a FROM t WHERE id = $1", ("5",)),
        ("(SELECT 1) UNION (SELECT 2)", ()),
        ("INSERT INTO t (a) VALUES ($1)", ("1",)),
        ("INSERT INTO t (a) VALUES ($1)", ("2",)),
    ]


def test_logging_tokens_are_sessions() -> None:
    queries, _ = read(
        P + "[conn1] BEGIN (implicit)",
        P + "[conn2] BEGIN (implicit)",
        P + "[conn1] SELECT %(a)s",
        P + "[conn2] SELECT %(b)s",
        P + "[conn2] [generated in 0.0001s] {'b': 2}",
        P + "[conn1] [generated in 0.0001s] {'a': 1}",
        P + "[conn2] COMMIT",
        P + "[conn2] BEGIN (implicit)",
        P + "[conn2] SELECT 3",
        P + "[conn2] [generated in 0.0001s] {}",
    )
    assert [(q.session, q.parameters, q.transaction) for q in queries] == [
        ("Engine[conn2]", ("2",), "Engine[conn2]:1"),
        ("Engine[conn1]", ("1",), "Engine[conn1]:1"),
        ("Engine[conn2]", (), "Engine[conn2]:2"),
    ]


def test_debug_rows_and_columns_are_not_queries() -> None:
    query = read_one(
        P + "SELECT id FROM t",
        P + "[generated in 0.0001s] {}",
        "2026-11-22 01:02:03,456 DEBUG sqlalchemy.engine.Engine Col ('id',)",
        "2026-11-22 01:02:03,456 DEBUG sqlalchemy.engine.Engine Row (1,)",
    )
    assert query.sql == "SELECT id FROM t"


# -- transactions -----------------------------------------------------------------------

TRANSACTION_CASES = [
    pytest.param(
        ["SELECT 1", "[raw sql] {}", "BEGIN (implicit)", "SELECT 2", "[generated in 0.1s] {}"],
        [("SELECT 1", None), ("SELECT 2", "Engine:1")],
        id="outside-then-inside",
    ),
    pytest.param(
        [
            "BEGIN (implicit)",
            "SELECT 1",
            "[generated in 0.1s] {}",
            "COMMIT",
            "SELECT 2",
            "[generated in 0.1s] {}",
            "BEGIN (implicit)",
            "SELECT 3",
            "[generated in 0.1s] {}",
            "ROLLBACK",
        ],
        [("SELECT 1", "Engine:1"), ("SELECT 2", None), ("SELECT 3", "Engine:2")],
        id="numbered-per-session",
    ),
    pytest.param(
        ["BEGIN (implicit)", "COMMIT", "[raw sql] {}", "SELECT 2", "[generated in 0.1s] {}"],
        [("COMMIT", "Engine:1"), ("SELECT 2", "Engine:1")],
        id="exec-driver-sql-commit-is-a-statement",
    ),
    pytest.param(
        [
            "BEGIN (implicit; DBAPI should not BEGIN due to autocommit mode)",
            "SELECT 1",
            "[generated in 0.1s] {}",
            "COMMIT using DBAPI connection.commit(), has no effect due to autocommit mode",
            "SELECT 2",
            "[generated in 0.1s] {}",
        ],
        [("SELECT 1", "Engine:1"), ("SELECT 2", None)],
        id="autocommit-notes",
    ),
    pytest.param(
        [
            "BEGIN (implicit)",
            "SAVEPOINT sa_savepoint_1",
            "[generated in 0.1s] {}",
            "RELEASE SAVEPOINT sa_savepoint_1",
            "[generated in 0.1s] {}",
            "ROLLBACK",
        ],
        [
            ("SAVEPOINT sa_savepoint_1", "Engine:1"),
            ("RELEASE SAVEPOINT sa_savepoint_1", "Engine:1"),
        ],
        id="savepoints-are-statements",
    ),
    pytest.param(
        ["BEGIN TWOPHASE (implicit)", "SELECT 1", "[generated in 0.1s] {}", "ROLLBACK"],
        [("SELECT 1", "Engine:1")],
        id="two-phase",
    ),
]


@pytest.mark.parametrize(("messages", "expected"), TRANSACTION_CASES)
def test_transaction_boundaries(
    messages: list[str], expected: list[tuple[str, str | None]]
) -> None:
    queries, stats = read(*(P + message for message in messages))
    assert stats.skipped == 0
    assert [(q.sql, q.transaction) for q in queries] == expected


# -- executemany ------------------------------------------------------------------------

EXECUTEMANY_CASES = [
    pytest.param(
        "INSERT INTO a (id, name) VALUES (%(id)s::INTEGER, %(name)s::VARCHAR)",
        "[generated in 0.0003s] [{'id': 1, 'name': 'a1'}, {'id': 2, 'name': 'a2'}]",
        [(("1", "a1"), 1, True), (("2", "a2"), 1, True)],
        id="psycopg3-list-of-dicts",
    ),
    pytest.param(
        "INSERT INTO books (title, author_id) VALUES (%(title)s, %(author_id)s)",
        "[generated in 0.0002s] ({'title': 't0', 'author_id': 1}, {'title': 't1', 'author_id': 1})",
        [(("t0", "1"), 1, True), (("t1", "1"), 1, True)],
        id="sqlalchemy-1.4-tuple-of-dicts",
    ),
    pytest.param(
        "INSERT INTO a (id, name) VALUES ($1::INTEGER, $2::VARCHAR)",
        "[generated in 0.0003s] [(1, 'a1'), (2, 'a2'), (3, None)]",
        [(("1", "a1"), 1, True), (("2", "a2"), 1, True), (("3", None), 1, True)],
        id="asyncpg-list-of-tuples",
    ),
    pytest.param(
        "UPDATE t SET v = %(v)s WHERE id = %(id)s",
        "[generated in 0.0002s] "
        + params_repr([{"v": "y", "id": i} for i in range(1, 30)], multi=True),
        [(("y", str(i)), 1, True) for i in (*range(1, 9), 28, 29)] + [((), 19, False)],
        id="ten-of-29-sets-displayed",
    ),
    pytest.param(
        "UPDATE t SET v = $1 WHERE id = $2",
        "[generated in 0.0002s] " + params_repr([("y", i) for i in range(12)], multi=True),
        [(("y", str(i)), 1, True) for i in (*range(8), 10, 11)] + [((), 2, False)],
        id="positional-sets-cut",
    ),
    pytest.param(
        "SELECT * FROM t WHERE tags = $1",
        "[generated in 0.0002s] ([1, 2, 3],)",
        [(('{"1","2","3"}',), 1, True)],
        id="one-array-value-is-not-executemany",
    ),
]


@pytest.mark.parametrize(("statement", "parameters", "expected"), EXECUTEMANY_CASES)
def test_executemany_is_one_query_per_set(
    statement: str, parameters: str, expected: list[tuple[tuple[str | None, ...], int, bool]]
) -> None:
    queries, stats = read(P + statement, P + parameters)
    assert stats.skipped == 0
    assert [(q.parameters, q.calls, q.replayable) for q in queries] == expected
    assert len({q.sql for q in queries}) == 1


# -- hidden and truncated parameters ----------------------------------------------------

HIDDEN_CASES = [
    pytest.param("SELECT * FROM t WHERE v = %(v_1)s", "[generated in 0.0002s]", False, id="badged"),
    pytest.param("select pg_catalog.version()", "[raw sql]", True, id="nothing-to-bind"),
    pytest.param("SELECT * FROM t WHERE v = $1", "[generated in 0.0002s]", False, id="asyncpg"),
]


@pytest.mark.parametrize(("statement", "badge", "replayable"), HIDDEN_CASES)
def test_hide_parameters(statement: str, badge: str, replayable: bool) -> None:
    query = read_one(
        P + statement, P + badge + " [SQL parameters hidden due to hide_parameters=True]"
    )
    assert (query.parameters, query.replayable, query.calls) == ((), replayable, 1)


LONG = "x" * 400
TRUNCATED_CASES = [
    pytest.param(
        "SELECT * FROM t WHERE a = %(a)s AND b = %(b)s",
        params_repr({"a": LONG, "b": 1}),
        2,
        "1",
        id="long-string-value",
    ),
    pytest.param(
        "SELECT * FROM t WHERE a = $1 AND b = $2",
        params_repr((b"\x00" * 200, 1)),
        2,
        "1",
        id="long-bytes-value-cut-mid-escape",
    ),
    pytest.param(
        "SELECT * FROM t WHERE id = ANY($1) AND b = $2",
        params_repr((list(range(200)), 1)),
        2,
        "1",
        id="long-array-value",
    ),
    pytest.param(
        "SELECT * FROM t WHERE id IN (" + ", ".join(f"%(id_{i})s" for i in range(120)) + ")",
        params_repr({f"id_{i}": i for i in range(120)}),
        120,
        "119",
        id="120-named-values-middle-20-not-shown",
    ),
    pytest.param(
        "SELECT * FROM t WHERE id IN (" + ", ".join(f"${i}" for i in range(1, 121)) + ")",
        params_repr(tuple(range(120))),
        120,
        "119",
        id="120-positional-values-middle-20-not-shown",
    ),
]


@pytest.mark.parametrize(("statement", "parameters", "count", "last"), TRUNCATED_CASES)
def test_truncated_values_are_not_replayable(
    statement: str, parameters: str, count: int, last: str
) -> None:
    assert " truncated" in parameters  # SQLAlchemy did cut it
    query = read_one(P + statement, P + "[generated in 0.0001s] " + parameters)
    assert not query.replayable
    assert (len(query.parameters), query.parameters[-1]) == (count, last)


def test_truncated_string_keeps_its_logged_text() -> None:
    logged = params_repr({"a": LONG})
    query = read_one(P + "SELECT %(a)s", P + "[generated in 0.0001s] " + logged)
    assert query.parameters == (logged[len("{'a': ") : -1],)
    assert "characters truncated" in (query.parameters[0] or "")


# -- insertmanyvalues statements cut in the log -----------------------------------------


def named_batch(rows: int, tail: str = "") -> tuple[str, str]:
    """An unordered psycopg2-style batch and its parameters, as SQLAlchemy logs them."""
    sql = "INSERT INTO misc (v) VALUES " + ", ".join(f"(%(v__{i})s)" for i in range(rows)) + tail
    return sql, params_repr({f"v__{i}": f"x{i}" for i in range(rows)})


def ordered_batch(rows: int, returning: str) -> tuple[str, str]:
    """An ordered (sentinel counter) asyncpg-style batch: ``$n`` numbered across rows."""
    values = ", ".join(f"(${2 * i + 1}::VARCHAR, ${2 * i + 2}::INTEGER, {i})" for i in range(rows))
    sql = (
        "INSERT INTO books (title, author_id) SELECT p0::VARCHAR, p1::INTEGER FROM "
        f"(VALUES {values}) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter "
        f"RETURNING {returning}"
    )
    params = tuple(v for i in range(rows) for v in (f"b{i}", i % 5 + 1))
    return sql, params_repr(params)


def psycopg3_batch(rows: int) -> tuple[str, str]:
    values = ", ".join(
        f"(%(title__{i})s::VARCHAR, %(author_id__{i})s::INTEGER, {i})" for i in range(rows)
    )
    sql = (
        "INSERT INTO books (title, author_id) SELECT p0::VARCHAR, p1::INTEGER FROM "
        f"(VALUES {values}) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter "
        "RETURNING books.id, books.id AS id__1"
    )
    params = {
        k: v for i in range(rows) for k, v in ((f"title__{i}", f"b{i}"), (f"author_id__{i}", i))
    }
    return sql, params_repr(params)


RESTORE_CASES = [
    pytest.param(*named_batch(50), id="named-unordered"),
    pytest.param(*named_batch(200), id="named-unordered-200-rows"),
    pytest.param(*ordered_batch(20, "books.id, books.id AS id__1"), id="numeric-ordered"),
    pytest.param(*ordered_batch(120, "books.id"), id="numeric-ordered-120-rows-values-cut"),
    pytest.param(*psycopg3_batch(20), id="psycopg3-ordered"),
    pytest.param(*psycopg3_batch(9), id="psycopg3-ordered-one-digit-counters"),
]


@pytest.mark.parametrize(("sql", "parameters"), RESTORE_CASES)
def test_cut_insertmanyvalues_statement_is_restored(sql: str, parameters: str) -> None:
    logged = str(_long_statement(sql))
    assert is_cut_statement(logged)
    cut = read_one(
        P + logged, P + "[generated in 0.0001s (insertmanyvalues) 1/1 (ordered)] " + parameters
    )
    whole = read_one(
        P + sql, P + "[generated in 0.0001s (insertmanyvalues) 1/1 (ordered)] " + parameters
    )
    assert (cut.sql, cut.parameters) == (whole.sql, whole.parameters)
    assert "$" in cut.sql and "%" not in cut.sql


# An ordered batch's tail: ") AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter
# RETURNING " (65 characters) and the RETURNING list.
EXACT_TAIL = "books.id AS " + "x" * (100 - 65 - len("books.id AS "))
HIDDEN_RESTORE_CASES = [
    pytest.param(*named_batch(50), True, id="unordered-rows-reach-the-end"),
    pytest.param(*ordered_batch(30, "books.id"), True, id="ordered-short-tail"),
    # The rows end exactly where the kept tail starts: nothing but the length confirms
    # the row count, which the logged values would do; without them, not restored.
    pytest.param(*ordered_batch(30, EXACT_TAIL), False, id="ordered-tail-of-exactly-100"),
]


@pytest.mark.parametrize(("sql", "parameters", "restored"), HIDDEN_RESTORE_CASES)
def test_cut_statement_with_hidden_parameters(sql: str, parameters: str, restored: bool) -> None:
    logged = P + str(_long_statement(sql))
    badge = "[generated in 0.0001s (insertmanyvalues) 1/1 (ordered)] "
    hidden = "[SQL parameters hidden due to hide_parameters=True]"
    queries, stats = read(logged, P + badge + hidden)
    whole = read_one(P + sql, P + badge + parameters)
    if restored:
        assert [(q.sql, q.replayable) for q in queries] == [(whole.sql, False)]
    else:
        assert (queries, stats.skip_reasons) == ([], {CUT_STATEMENT: 1})
        assert read_one(logged, P + badge + parameters).sql == whole.sql


UNRESTORABLE_CASES = [
    pytest.param(
        *ordered_batch(30, ", ".join(f"books.column_{i}" for i in range(20))),
        id="tail-longer-than-what-is-kept",
    ),
    pytest.param(
        "INSERT INTO t ("
        + ", ".join(f"column_{i}" for i in range(40))
        + ") VALUES "
        + ", ".join(f"(%(c__{i})s)" for i in range(60)),
        params_repr({f"c__{i}": i for i in range(60)}),
        id="first-row-not-in-the-kept-head",
    ),
    pytest.param(
        named_batch(50)[0],
        params_repr({f"v__{i}": f"x{i}" for i in range(49)}),
        id="parameters-disagree",
    ),
]


@pytest.mark.parametrize(("sql", "parameters"), UNRESTORABLE_CASES)
def test_unrestorable_cut_statement_is_skipped(sql: str, parameters: str) -> None:
    queries, stats = read(P + str(_long_statement(sql)), P + "[generated in 0.0001s] " + parameters)
    assert (queries, stats.skip_reasons) == ([], {CUT_STATEMENT: 1})


def test_a_marker_elsewhere_is_not_a_cut_statement() -> None:
    text = "SELECT ' ... 12 characters truncated ... ' FROM t"
    assert not is_cut_statement(text)
    assert read_one(P + text, P + "[raw sql] {}").sql == text


# -- what is skipped --------------------------------------------------------------------

SKIP_CASES = [
    pytest.param(["stray text before any record"], 0, {ORPHAN_CONTINUATION: 1}, id="orphan"),
    pytest.param(
        [P + "[generated in 0.0001s] {'a': 1}"], 0, {PARAMETERS_WITHOUT_STATEMENT: 1}, id="no-stmt"
    ),
    pytest.param(
        [P + "SELECT %(a)s", P + "[generated in 0.0001s] {'a': 1}", "leftover"],
        1,
        {STRAY_CONTINUATION: 1},
        id="stray-continuation",
    ),
    pytest.param(
        [P + "SELECT %(a)s", P + "[generated in 0.0001s] {'a': 1"],
        1,
        {UNREADABLE_PARAMETERS: 1},
        id="unbalanced-parameters",
    ),
    pytest.param([P + "SELECT 1"], 1, {}, id="log-ends-before-parameters"),
    pytest.param([P + "COMMIT"], 0, {}, id="commit-at-the-end"),
    pytest.param([P + ";", P + "[raw sql] {}"], 0, {"empty statement": 1}, id="empty"),
]


@pytest.mark.parametrize(("lines", "queries", "reasons"), SKIP_CASES)
def test_what_is_skipped(lines: list[str], queries: int, reasons: dict[str, int]) -> None:
    found, stats = read(*lines)
    assert (len(found), stats.skip_reasons, stats.lines_read) == (queries, reasons, len(lines))


def test_unreadable_parameters_keep_the_query_not_replayable() -> None:
    queries, _ = read(P + "SELECT %(a)s", P + "[generated in 0.0001s] {'a': 1")
    assert [(q.sql, q.parameters, q.replayable) for q in queries] == [("SELECT $1", (), False)]


ADVERSARIAL_CASES = [
    pytest.param(["SELECT $" + "9" * 5000, "[raw sql] (1,)"], id="huge-dollar-number"),
    pytest.param(["SELECT $99999", "[raw sql] (1,)"], id="dollar-beyond-65535"),
    pytest.param(
        ["SELECT %(a)s", "[generated in 0.1s] {'a': " + "[" * 5000 + "]" * 5000 + "}"], id="deep"
    ),
    pytest.param(
        ["SELECT %(a)s", "[generated in 0.1s] {'a': " + "(" * 100_000 + "}"], id="unbalanced"
    ),
    pytest.param(
        ["SELECT %s", "[raw sql] (1 ... 999999999 parameters truncated ... 2)"], id="many-missing"
    ),
    pytest.param(
        ["SELECT %s", "[raw sql] (1 ... " + "9" * 5000 + " parameters truncated ... 2)"],
        id="digits",
    ),
    pytest.param(
        [
            "SELECT 1",
            "[raw sql] [{}  ... displaying 10 of 999999999 total bound parameter sets ...  {}]",
        ],
        id="sets",
    ),
    pytest.param(
        [
            "INSERT INTO t VALUES (%s)"
            + "x" * 225
            + " ... 999999999 characters truncated ... "
            + "y" * 100,
            "[raw sql] (1,)",
        ],
        id="huge-cut-statement",
    ),
    pytest.param(
        ["SELECT %(a)s", "[generated in 0.1s] {'a': datetime.timedelta(days=10**9)}"], id="overflow"
    ),
    pytest.param(
        ["SELECT %(a)s", "[generated in 0.1s] {'a': Decimal('1e999999999999')}"], id="decimal"
    ),
    pytest.param(["SELECT %(a)s", "[generated in 0.1s] {'a': '\x00'}"], id="nul-byte"),
]


@pytest.mark.parametrize("messages", ADVERSARIAL_CASES)
def test_adversarial_input_is_read_quickly_without_crashing(messages: list[str]) -> None:
    queries, stats = read(*(P + message for message in messages))
    assert stats.queries == len(queries)
    assert stats.lines_read == len(messages)


def test_garbage_never_crashes() -> None:
    rng = random.Random(7)
    lines = (CORPUS / "sqlalchemy2.0_echo_debug_insertmanyvalues_hideparams.log").read_text()
    lines += (CORPUS / "sqlalchemy2.0_echo_psycopg3.log").read_text()
    source = lines.splitlines()
    alphabet = "()[]{}'\",:%$\\ \nabc0123"
    for _ in range(200):
        mutated = list(source)
        for _ in range(5):
            index = rng.randrange(len(mutated))
            line = mutated[index]
            cut = rng.randrange(len(line) + 1)
            mutated[index] = line[:cut] + "".join(rng.choices(alphabet, k=rng.randrange(4)))
        queries, stats = read(*mutated)
        assert stats.lines_read == len(mutated)
        assert stats.queries == len(queries)


# -- sniffing and read_input ------------------------------------------------------------

SNIFF_CASES = [
    pytest.param([P + "select pg_catalog.version()"], True, id="echo"),
    pytest.param(["INFO:sqlalchemy.engine.Engine:BEGIN (implicit)"], True, id="basicConfig"),
    pytest.param(["app started", "INFO sqlalchemy.engine.Engine.app SELECT 1"], True, id="later"),
    pytest.param(["SELECT 'sqlalchemy.engine.Engine x'"], False, id="sql-mentioning-it"),
    pytest.param(
        ["2026-11-21 23:45:13.556 UTC [10704] postgres@postgres LOG:  duration: 0.5 ms"],
        False,
        id="postgresql-log",
    ),
    pytest.param(["select 1;"], False, id="sql"),
]


@pytest.mark.parametrize(("head", "expected"), SNIFF_CASES)
def test_sniff(head: list[str], expected: bool) -> None:
    assert sniff(head) is expected


def test_registered_and_read_input_uses_it() -> None:
    assert "sqlalchemy" in [f.name for f in FORMATS]
    path = CORPUS / "sqlalchemy2.0_echo_psycopg3.log"
    queries, stats = read_input(str(path))
    reader = SqlAlchemyLogReader(path)
    assert queries == list(reader) and stats == reader.stats
    assert read_input(str(path), log_format="sqlalchemy") == (queries, stats)


# -- the generated corpus ---------------------------------------------------------------

# Counted by hand from each file: one query per statement record that a parameters
# record follows, one per displayed executemany set (plus one for the sets SQLAlchemy
# did not display, with calls = their number), none for BEGIN/COMMIT/ROLLBACK or the
# DEBUG Col/Row records; transactions are the "BEGIN (implicit)" records per engine.
CORPUS_CASES = [
    # 3 first-connect statements; 1 transaction: 1 + 5 lazy loads + 1 + 1 + 1 + 1 + 1
    # + 1 statements and an executemany INSERT of 3 sets (a tuple of dicts).
    pytest.param("sqlalchemy1.4_echo_psycopg2.log", 18, 18, {"Engine": 1}, id="1.4-psycopg2"),
    # 3 + 10 statements in 1 transaction. Line 42's lazy load is counted though it never
    # ran (MissingGreenlet: the file's "sqlalchemy.engine EXC" line is the generator's
    # note, and the server log has no such execution): SQLAlchemy logs no failures.
    pytest.param("sqlalchemy2.0_echo_asyncpg.log", 13, 13, {"Engine": 1}, id="2.0-asyncpg"),
    # Engine.app: 3 + 1 + 2 + (3 insert batches + 10 displayed update sets + 1 record
    # for the 19 not displayed + 2) = 22 records, 40 calls, 3 transactions; Engine
    # (hide_parameters): 3 + 1 in 1 transaction.
    pytest.param(
        "sqlalchemy2.0_echo_debug_insertmanyvalues_hideparams.log",
        26,
        44,
        {"Engine.app": 3, "Engine": 1},
        id="2.0-debug-hideparams",
    ),
    # 3 + 3 + 6 + 3 + 6 + 4 + 6 statements in 6 transactions; inserts are
    # insertmanyvalues batches (one statement each).
    pytest.param("sqlalchemy2.0_echo_psycopg2.log", 31, 31, {"Engine": 6}, id="2.0-psycopg2"),
    # As psycopg2, but DROPs first (3 + 6 + 6 + ...) and INSERTs without RETURNING are
    # executemany (5 + 3 sets, and 3 at the end): 3 + 6 + 6 + 9 + 6 + 4 + 8.
    pytest.param("sqlalchemy2.0_echo_psycopg3.log", 42, 42, {"Engine": 6}, id="2.0-psycopg3"),
]


@pytest.mark.parametrize(("name", "records", "calls", "transactions"), CORPUS_CASES)
def test_corpus_counts(name: str, records: int, calls: int, transactions: dict[str, int]) -> None:
    reader = SqlAlchemyLogReader(CORPUS / name)
    queries = list(reader)
    assert (len(queries), sum(q.calls for q in queries)) == (records, calls)
    assert reader.stats.skipped == 0
    assert reader.stats.lines_read == len((CORPUS / name).read_text().splitlines())
    found: dict[str, set[str]] = {}
    for query in queries:
        assert query.duration_ms is None
        assert query.session is not None
        if query.transaction is not None:
            found.setdefault(query.session, set()).add(query.transaction)
    assert {session: len(ids) for session, ids in found.items()} == transactions


def test_corpus_hide_parameters_file_details() -> None:
    queries = list(
        SqlAlchemyLogReader(CORPUS / "sqlalchemy2.0_echo_debug_insertmanyvalues_hideparams.log")
    )
    batches = [q for q in queries if q.sql.startswith("INSERT INTO misc")]
    # Batches 1/3 and 2/3 are logged cut ("... 316 characters truncated ..."): rebuilt.
    assert [len(q.parameters) for q in batches] == [50, 50, 20]
    assert batches[1].parameters[-1] == "x99" and batches[1].sql.endswith("($50)")
    assert all(q.replayable for q in batches)
    hidden = [q for q in queries if q.session == "Engine" and q.transaction == "Engine:1"]
    assert [(q.parameters, q.replayable) for q in hidden] == [((), False)]


# The same workloads as the server saw them (log_min_duration_statement = 0), one
# driver after the other, so a time window selects one script's statements.
SERVER_LOG = CORPUS / "pg15_stderr_lmds0_prefix-m-p-q-u-d.log"
SERVER_CASES = [
    pytest.param("sqlalchemy2.0_echo_psycopg2.log", "2026-11-21 23:45:12", id="psycopg2"),
    pytest.param("sqlalchemy2.0_echo_psycopg3.log", "2026-11-21 23:45:13", id="psycopg3"),
    pytest.param(
        "sqlalchemy2.0_echo_debug_insertmanyvalues_hideparams.log",
        "2026-11-21 23:45:33",
        id="insertmanyvalues-hideparams",
    ),
]


@pytest.mark.parametrize(("name", "second"), SERVER_CASES)
def test_corpus_matches_the_server_log(name: str, second: str) -> None:
    """Non-utility shapes and calls per shape equal the server's for the same seconds.

    Not for asyncpg (a statement that failed client-side, see above) nor SQLAlchemy 1.4
    (psycopg2's execute_values sent one multi-row INSERT, which failed).
    """
    ours = _calls_by_shape(SqlAlchemyLogReader(CORPUS / name))
    server, _ = read_input(str(SERVER_LOG))
    theirs = _calls_by_shape(q for q in server if (q.timestamp or "").startswith(second))
    assert ours == theirs


def _calls_by_shape(queries: Iterable[CapturedQuery]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for query in queries:
        if not is_utility(query.sql):
            calls[fingerprint(query.sql)] += query.calls
    return calls


# -- acceptance: an ORM script against a real server ------------------------------------


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


AUTHORS = 5
BOOKS = 20
SELECTS_BY_ID = 12  # more than 5: psycopg 3 prepares the statement on the server
ECHO_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
BASIC_FORMAT = "%(levelname)s:%(name)s:%(message)s"


def run_script(url: str) -> None:
    """The workload: DDL, add_all (insertmanyvalues), N selects, N+1 lazy loads, updates."""
    engine = create_engine(url, echo=False)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            authors = [Author(name=f"author{i}") for i in range(AUTHORS)]
            session.add_all(authors)
            session.add_all(
                [Book(title=f"book{i}", author=authors[i % AUTHORS]) for i in range(BOOKS)]
            )
            session.commit()
        with Session(engine) as session:
            for book_id in range(1, SELECTS_BY_ID + 1):
                session.execute(select(Book).where(Book.id == book_id)).scalar_one()
            for author in session.scalars(select(Author).order_by(Author.id)):
                assert len(author.books) == BOOKS // AUTHORS  # lazy load: N+1
            session.execute(update(Book).where(Book.author_id == 1).values(title="retitled"))
            for book in session.scalars(select(Book).where(Book.author_id == 2)):
                book.title += "!"  # flushed as one executemany() UPDATE
            session.commit()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def logging_server() -> Iterator[ThrowawayServer]:
    """A server of its own: the test reads its whole log."""
    prefer = cast(
        Literal["embedded", "system", "auto"], os.environ.get("EXPLAINER_TEST_SERVER", "auto")
    )
    settings = {
        "log_min_duration_statement": "0",
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_timezone": "UTC",
    }
    with ThrowawayServer(find_binaries(prefer), settings=settings) as server:
        yield server


def test_sqlalchemy_log_matches_the_server_log(
    logging_server: ThrowawayServer, tmp_path: Path
) -> None:
    """The script's statements, read from SQLAlchemy's log and from the server's log,
    make the same shapes with the same calls.

    Compared: the non-utility groups of both workloads (fingerprint -> calls), the
    server's restricted to the script's database. Not compared: utility groups, where the
    server has more: BEGIN/COMMIT as psycopg sends them (SQLAlchemy's notes are not SQL),
    psycopg's own type lookup in a SAVEPOINT, ``show transaction isolation level``, which
    SQLAlchemy runs unlogged; the utility statements SQLAlchemy logged (first-connect
    queries, table checks, CREATE TABLE) must still be among the server's.
    """
    database = "sa_script"
    dsn = logging_server.create_database(database)
    logs = {ECHO_FORMAT: tmp_path / "echo.log", BASIC_FORMAT: tmp_path / "basic.log"}
    logger = logging.getLogger("sqlalchemy.engine")
    handlers = []
    for fmt, path in logs.items():
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(fmt))
        handlers.append(handler)
        logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        run_script(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    finally:
        logger.setLevel(level)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()

    ours, stats = read_input(str(logs[ECHO_FORMAT]))
    assert stats.skipped == 0
    basic, _ = read_input(str(logs[BASIC_FORMAT]))
    assert [(q.sql, q.parameters, q.calls, q.transaction) for q in basic] == [
        (q.sql, q.parameters, q.calls, q.transaction) for q in ours
    ]
    assert "characters truncated" in logs[ECHO_FORMAT].read_text()  # the books INSERT

    server, _ = read_input(str(logging_server.log_path))
    theirs = [q for q in server if q.database == database]
    our_workload, their_workload = build_workload(ours), build_workload(theirs)
    our_calls = {g.fingerprint: g.calls for g in our_workload.groups}
    assert our_calls == {g.fingerprint: g.calls for g in their_workload.groups}

    by_sql = {g.example.sql.split("\n")[-1]: g.calls for g in our_workload.groups}
    assert by_sql["WHERE books.id = $1::INTEGER"] == SELECTS_BY_ID
    assert by_sql["WHERE $1::INTEGER = books.author_id"] == AUTHORS
    books_of_author_2 = BOOKS // AUTHORS  # one UPDATE execution each (executemany)
    assert by_sql["UPDATE books SET title=$1::VARCHAR WHERE books.id = $2::INTEGER"] == (
        books_of_author_2
    )
    # + the two INSERTs, the authors SELECT, the bulk UPDATE, the books-of-author-2 SELECT
    assert sum(our_calls.values()) == SELECTS_BY_ID + AUTHORS + books_of_author_2 + 5
    assert all(g.example.replayable for g in our_workload.groups)

    their_utility = {g.fingerprint: g.calls for g in their_workload.utility}
    for group in our_workload.utility:
        assert their_utility.get(group.fingerprint) == group.calls, group.example.sql
