"""Capture: PostgreSQL server logs of every shape (prefixes, syslog, csvlog, jsonlog...)."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from explainer.capture import CapturedQuery, PgLogReader, read_input
from explainer.capture.auto_explain import parse_plan_message
from explainer.capture.prefix import compile_prefix, detect_parser, parser_for
from explainer.capture.records import read_parameters
from explainer.errors import InputError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs"
GENERATED = CORPUS / "generated"
LOG_FILES = sorted(
    path
    for folder in (CORPUS, GENERATED)
    if folder.is_dir()
    for path in folder.iterdir()
    if path.is_file() and path.suffix != ".md"
)
MYSQL_FILES = {
    "beats__mariadb-10.3.13.log",
    "beats__mariadb-explain.log",
    "beats__mysql-ubuntu-8.0.15.log",
}
# Read by other readers (tested with them): SQLAlchemy echo logs, pg_stat_statements.
OTHER_READERS = {
    "pg15_pg_stat_statements.csv",
    "sqlalchemy1.4_echo_psycopg2.log",
    "sqlalchemy2.0_echo_asyncpg.log",
    "sqlalchemy2.0_echo_debug_insertmanyvalues_hideparams.log",
    "sqlalchemy2.0_echo_psycopg2.log",
    "sqlalchemy2.0_echo_psycopg3.log",
}
FAILED = "statement failed (ERROR)"
EMPTY = "empty statement"


def read_text(text: str) -> tuple[list[CapturedQuery], dict[str, int]]:
    """The queries of a log given as text, and its skip reasons; stats are consistent."""
    reader = PgLogReader(text.splitlines(keepends=True), source="pg.log")
    queries = list(reader)
    assert reader.stats.queries == len(queries)
    assert reader.stats.skipped == sum(reader.stats.skip_reasons.values())
    return queries, reader.stats.skip_reasons


# -- the shared corpus -------------------------------------------------------------------


@pytest.mark.parametrize("path", LOG_FILES, ids=lambda path: path.name)
def test_every_corpus_file_reads_without_crashing(path: Path) -> None:
    try:
        queries, stats = read_input(str(path))
    except InputError as error:
        assert path.name in MYSQL_FILES, error  # a clean refusal, for those only
        assert "\n" not in str(error)
        return
    assert path.name not in MYSQL_FILES
    assert stats.skipped == sum(stats.skip_reasons.values())
    assert all(query.sql and query.sql == query.sql.strip() for query in queries)


@pytest.mark.parametrize("name", sorted(MYSQL_FILES))
def test_mysql_slow_logs_are_refused(name: str) -> None:
    """Read as SQL they would give junk statements; a one-line refusal says why."""
    with pytest.raises(InputError, match=r"a MySQL/MariaDB slow query log \(explainer reads"):
        read_input(str(CORPUS / name))


# Exact counts, each counted by hand with grep over the file (the commands below), where
# "statement" lines are 'duration: X ms  statement: ', "execute" lines 'duration: X ms
# execute ' (parse and bind lines are steps of an execute, not queries).
CORPUS_COUNTS = [
    # grep -c 'execute py:' -> 1 (its parse and bind rows are steps of it)
    pytest.param("beats__postgresql-11-parse-bind.csv.log", 1, {}, id="beats-csv-parse-bind"),
    # one csvlog record whose quoted message spans 2 lines (22 columns)
    pytest.param("dexter__queries.csv", 1, {}, id="dexter-csv"),
    pytest.param("dexter__queries.json", 1, {}, id="dexter-json"),
    pytest.param("dexter__queries.log", 1, {}, id="dexter-stderr"),
    pytest.param("dexter__queries.sql", 1, {}, id="dexter-sql"),
    # grep -c 'LOG,00000,"duration: [0-9.]* ms  execute' -> 5 (3 bind rows are steps)
    pytest.param("pgbadger__anonymize.log", 5, {}, id="anonymize-csv"),
    # the only statement line: '[202]: [2-1] ... LOG:  statement: SELECT *  FROM t1'
    pytest.param("pgbadger__cloudsql_excerpt.jsonl", 1, {}, id="cloudsql"),
    # grep -c 'statement: ;' -> 7 empty statements (pg_isready / instance manager pings)
    pytest.param("pgbadger__cnpg_excerpt.jsonl", 0, {EMPTY: 7}, id="cnpg"),
    # one 'execute stmt_slow/stmt_slow:' with duration, one 'statement:' without
    pytest.param("pgbadger__csv_statement_without_duration.log", 2, {}, id="csv-25-columns"),
    # grep -cE 'LOG: +duration: [0-9.]+ ms +(statement|execute)' -> 3 + 1; one
    # 'ERROR:  deadlock detected' followed by its STATEMENT
    pytest.param("pgbadger__logplex_heroku.log", 4, {FAILED: 1}, id="heroku-logplex"),
    # 3 statement + 2 execute lines
    pytest.param("pgbadger__multiline_param.log", 5, {}, id="multiline-param"),
    # grep -cE 'LOG: +duration: [0-9.]+ ms +statement: ' -> 102; 3 systemd lines
    pytest.param(
        "pgbadger__pg-syslog_excerpt.log",
        102,
        {"log line of another program": 3},
        id="syslog",
    ),
    # 2 statement lines with a single space after 'LOG:' and 'ms'
    pytest.param("pgbadger__pg-timezones.log", 2, {}, id="timezones-rds-prefix"),
    # grep -c 'execute <unnamed>' -> 3
    pytest.param("pgbadger__postgresql_param_range.log", 3, {}, id="param-range"),
    # 20 statement lines; grep -c ' ERROR:' -> 3, each followed by its STATEMENT
    pytest.param("pgbadger__queryid.log", 20, {FAILED: 3}, id="queryid"),
    # 82 statement lines, 3 of them 'statement: ' with nothing after
    pytest.param("pgbadger__rds_excerpt.log", 79, {EMPTY: 3}, id="rds"),
    pytest.param("pgbadger__stmt_type.log", 12, {}, id="stmt-type"),
    # 65 statement lines; the 5 'STATEMENT:' lines echo temp-file messages
    pytest.param("pgbadger__tempfile_only.log", 65, {}, id="tempfile-only"),
    # 5 statement + 3 execute lines; the 5 plans (grep -c 'ms  plan:') belong to 5 of them;
    # 3 ERROR rows, one per failed statement
    pytest.param("generated/pg15_csvlog_auto_explain.csv", 8, {FAILED: 3}, id="auto-explain-csv"),
    pytest.param(
        "generated/pg15_jsonlog_auto_explain.jsonl", 8, {FAILED: 3}, id="auto-explain-json"
    ),
    pytest.param(
        "generated/pg15_stderr_auto_explain_text_json.log",
        8,
        {FAILED: 3},
        id="auto-explain-stderr",
    ),
    # 170 statement + 45 execute lines (45 bind, 32 parse rows are steps); 1 ERROR
    pytest.param("generated/pg15_csvlog_lmds0.csv", 215, {FAILED: 1}, id="lmds0-csv"),
    pytest.param("generated/pg15_jsonlog_lmds0.jsonl", 215, {FAILED: 1}, id="lmds0-json"),
    pytest.param(
        "generated/pg15_stderr_lmds0_prefix-m-p-q-u-d.log", 215, {FAILED: 1}, id="lmds0-stderr"
    ),
    # 35 'LOG:  statement: ' + 32 'LOG:  execute ' lines, each with its bare duration
    pytest.param(
        "generated/pg15_stderr_log_statement_all_log_duration_prefix-t-p-l.log",
        67,
        {},
        id="log-statement-all",
    ),
]


@pytest.mark.parametrize(("name", "count", "skip_reasons"), CORPUS_COUNTS)
def test_corpus_query_counts(name: str, count: int, skip_reasons: dict[str, int]) -> None:
    queries, stats = read_input(str(CORPUS / name))
    assert stats.queries == len(queries) == count
    assert stats.skip_reasons == skip_reasons


def test_every_postgresql_corpus_file_is_counted() -> None:
    """A file added to the corpus must get its hand-counted line in CORPUS_COUNTS."""
    counted = {str(param.values[0]) for param in CORPUS_COUNTS}
    present = {
        str(path.relative_to(CORPUS))
        for path in LOG_FILES
        if path.name not in MYSQL_FILES | OTHER_READERS
    }
    assert present == counted


def test_corpus_auto_explain_same_in_every_format() -> None:
    """stderr, csvlog and jsonlog of one run: the same 8 queries, 5 with their plan."""
    results = [
        read_input(str(GENERATED / name))[0]
        for name in (
            "pg15_stderr_auto_explain_text_json.log",
            "pg15_csvlog_auto_explain.csv",
            "pg15_jsonlog_auto_explain.jsonl",
        )
    ]
    shapes = [
        [(q.sql, q.duration_ms, q.parameters, q.replayable, q.application) for q in queries]
        for queries in results
    ]
    assert shapes[0] == shapes[1] == shapes[2]
    for queries in results:
        plans = [(q.sql, q.observed_plan) for q in queries if q.observed_plan is not None]
        assert len(plans) == 5
        json_plan = next(p for sql, p in plans if sql.startswith("SELECT count(*)"))
        assert isinstance(json_plan, dict) and json_plan["Plan"]["Node Type"] == "Aggregate"
        text_plan = next(p for sql, p in plans if sql.startswith("SELECT id, status"))
        assert isinstance(text_plan, str) and text_plan.startswith("Limit  (cost=")
        # log_parameter_max_length = 8: $2 = 'User1234...' cannot be replayed
        (truncated,) = [q for q in queries if not q.replayable]
        assert truncated.parameters == ('{"k": 5}', "User1234...")


def test_corpus_lmds0_same_in_every_format() -> None:
    results = [
        read_input(str(GENERATED / name))[0]
        for name in (
            "pg15_stderr_lmds0_prefix-m-p-q-u-d.log",
            "pg15_csvlog_lmds0.csv",
            "pg15_jsonlog_lmds0.jsonl",
        )
    ]
    shapes = [[(q.sql, q.duration_ms, q.parameters, q.session) for q in r] for r in results]
    assert shapes[0] == shapes[1] == shapes[2]
    assert sum(1 for q in results[1] if q.parameters) == 38


def test_corpus_syslog_joins_continuation_parts() -> None:
    queries, _ = read_input(str(CORPUS / "pgbadger__pg-syslog_excerpt.log"))
    first = queries[0]
    assert first.sql.startswith('SELECT d.datname as "Name",\n       pg_catalog.pg_get_userbyid')
    assert first.sql.endswith("FROM pg_catalog.pg_database d\nORDER BY 1")
    assert (first.session, first.user, first.database, first.application, first.line) == (
        "10819",
        "postgres",
        "postgres",
        "psql",
        11,
    )
    assert first.timestamp == "Feb 11 13:15:40"


def test_corpus_logplex_multi_part_execute() -> None:
    queries, _ = read_input(str(CORPUS / "pgbadger__logplex_heroku.log"))
    last = queries[-1]
    assert last.sql.startswith('UPDATE "checkers" SET redundant_missions_count =\n        (\n')
    assert last.sql.endswith("job_id:4bf2ec64839e37e767688539*/")
    assert (last.session, last.duration_ms) == ("5925", 85756.273)


def test_corpus_parameter_with_newline() -> None:
    queries, _ = read_input(str(CORPUS / "pgbadger__multiline_param.log"))
    assert [q.parameters for q in queries if q.parameters] == [
        ("1234", "njchar\nhello", "aaaa"),
        ("1234", "njvarchar\nbye", "iiii"),
    ]


# -- log_line_prefix ---------------------------------------------------------------------

TAIL = "LOG:  duration: 1.5 ms  statement: SELECT 1"
TS = "2026-11-22 01:02:03"

PREFIX_CASES = [
    pytest.param("%m [%p] ", f"{TS}.456 UTC [12] ", {"timestamp": f"{TS}.456 UTC"}, id="m"),
    pytest.param("%t [%p] ", f"{TS} CEST [12] ", {"timestamp": f"{TS} CEST"}, id="t"),
    pytest.param("%t [%p] ", f"{TS} +03 [12] ", {"timestamp": f"{TS} +03"}, id="t-numeric-zone"),
    pytest.param("%n [%p] ", "1795222923.456 [12] ", {"timestamp": "1795222923.456"}, id="n"),
    pytest.param("[%p] ", "[4242] ", {"session": "4242"}, id="p"),
    pytest.param("%l %p ", "17 12 ", {"session": "12"}, id="l"),
    pytest.param("u=%u ", "u=alice ", {"user": "alice"}, id="u"),
    pytest.param("%u@%d ", "alice@shop ", {"user": "alice", "database": "shop"}, id="u-at-d"),
    pytest.param(
        "app=%a ", "app=pgAdmin 4 - DB:shop ", {"application": "pgAdmin 4 - DB:shop"}, id="a"
    ),
    pytest.param("%h %u ", "10.0.0.1 alice ", {"user": "alice"}, id="h"),
    pytest.param("%r:%u:", "10.0.0.1(50918):alice:", {"user": "alice"}, id="r"),
    pytest.param("%c ", "6b022d48.3177 ", {"session": "6b022d48.3177"}, id="c-without-p"),
    pytest.param("%c [%p] ", "6b022d48.3177 [12] ", {"session": "12"}, id="c-with-p"),
    pytest.param("%s [%p] ", f"{TS} UTC [12] ", {"timestamp": None}, id="s"),
    pytest.param("%v [%p] ", "3/63 [12] ", {"transaction": "3/63"}, id="v"),
    pytest.param("%v [%p] ", "3/0 [12] ", {"transaction": None}, id="v-autocommit"),
    pytest.param("%x [%p] ", "738 [12] ", {"transaction": "xid 738"}, id="x"),
    pytest.param("%x [%p] ", "0 [12] ", {"transaction": None}, id="x-none"),
    pytest.param("%e [%p] ", "00000 [12] ", {"session": "12"}, id="e"),
    pytest.param("%i [%p] ", "idle in transaction [12] ", {"session": "12"}, id="i"),
    pytest.param("%b [%p] ", "client backend [12] ", {"session": "12"}, id="b"),
    pytest.param("%L [%p] ", "127.0.0.1 [12] ", {"session": "12"}, id="L"),
    pytest.param("%P[%p] ", "[12] ", {"session": "12"}, id="P-empty"),
    pytest.param("%Q [%p] ", "-8112313845396740087 [12] ", {"session": "12"}, id="Q"),
    pytest.param("100%% [%p] ", "100% [12] ", {"session": "12"}, id="percent"),
    pytest.param("%-8u|%5p|", "alice   |   12|", {"user": "alice", "session": "12"}, id="padding"),
    pytest.param("%m [%p]", f"{TS}.456 UTC [12] ", {"session": "12"}, id="no-trailing-space"),
    pytest.param(
        "%m [%p] %q%u@%d ", f"{TS}.456 UTC [12] alice@shop ", {"user": "alice"}, id="q-session"
    ),
    pytest.param("%m [%p] %q%u@%d ", f"{TS}.456 UTC [12] ", {"user": None}, id="q-no-session"),
    pytest.param(
        "%t:%r:%u@%d:[%p]:",
        f"{TS} CET:[local]:postgres@template1:[12774]:",
        {"user": "postgres", "database": "template1", "session": "12774"},
        id="rds",
    ),
    pytest.param(
        "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
        f"{TS} UTC [7]: [3-1] user=app,db=crm,app=shop api,client=10.0.0.1 ",
        {"user": "app", "database": "crm", "application": "shop api"},
        id="pgbadger",
    ),
]


@pytest.mark.parametrize(("prefix", "written", "fields"), PREFIX_CASES)
def test_prefix_escapes(prefix: str, written: str, fields: dict[str, str | None]) -> None:
    record = parser_for(prefix)(written + TAIL, 7)
    assert record is not None
    assert (record.severity, record.message, record.line) == (
        "LOG",
        "duration: 1.5 ms  statement: SELECT 1",
        7,
    )
    for name, value in fields.items():
        assert getattr(record, name) == value, name


def test_prefix_is_one_regex_with_every_field() -> None:
    pattern = compile_prefix("%m [%p] %q%u@%d ")
    assert {"pid", "user", "database", "application", "timestamp", "vxid", "xid"} <= set(
        pattern.groupindex
    )


@pytest.mark.parametrize(
    ("first_line", "fields"),
    [
        pytest.param(
            f"{TS}.456 UTC [12] alice@shop/billing LOG:  statement: SELECT 1",
            ("alice", "shop", "billing"),
            id="debian-with-app",
        ),
        pytest.param(
            f"{TS}.456 UTC [12] alice@shop LOG:  statement: SELECT 1",
            ("alice", "shop", None),
            id="debian",
        ),
        pytest.param(
            f"{TS} UTC [12]: [1-1] user=alice,db=shop,app=psql,client=[local] LOG:  statement: x",
            ("alice", "shop", "psql"),
            id="pgbadger",
        ),
        pytest.param(
            f"{TS} UTC [12]: [1-1] user=alice,db=shop LOG:  statement: SELECT 1",
            ("alice", "shop", None),
            id="pgbadger-short",
        ),
        pytest.param(
            f"{TS} UTC [12-1] alice@shop LOG:  statement: SELECT 1",
            ("alice", "shop", None),
            id="pid-line",
        ),
        pytest.param(
            f"{TS} UTC:10.1.2.3(5432):alice@shop:[12]:LOG:  statement: SELECT 1",
            ("alice", "shop", None),
            id="rds",
        ),
        pytest.param(
            f"{TS}.456 UTC [12] usr=alice,db=shop,appli=x LOG:  statement: SELECT 1",
            ("alice", "shop", "x"),
            id="tolerant-fallback",
        ),
    ],
)
def test_prefix_detection(first_line: str, fields: tuple[str, str, str | None]) -> None:
    background = f"{TS}.456 UTC [10] LOG:  checkpoint starting: time"
    parse = detect_parser([background, first_line, first_line])
    record = parse(first_line, 1)
    assert record is not None and record.session == "12"
    assert (record.user, record.database, record.application) == fields


def test_log_prefix_override(tmp_path: Path) -> None:
    path = tmp_path / "pg.log"
    path.write_text(
        "2026-11-22 01:02:03 UTC|12|alice|shop| LOG:  duration: 2 ms  statement: SELECT 1\n"
        "\tFROM t\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="a log format explainer does not read yet"):
        read_input(str(path))  # no known prefix, no [pid]: not recognised
    queries, _ = read_input(str(path), log_prefix="%t|%p|%u|%d|")
    assert [(q.sql, q.session, q.user, q.database) for q in queries] == [
        ("SELECT 1\nFROM t", "12", "alice", "shop")
    ]
    with pytest.raises(InputError, match=r"log_line_prefix '%m \[%p\] ' matches none"):
        read_input(str(path), log_prefix="%m [%p] ", log_format="stderr")


def test_prefix_change_midway_still_reads() -> None:
    text = (
        f"{TS}.456 UTC [12] alice@shop LOG:  duration: 1 ms  statement: SELECT 1\n"
        f"{TS} UTC [13]: [1-1] user=bob,db=crm LOG:  duration: 2 ms  statement: SELECT 2\n"
    )
    queries, reasons = read_text(text)
    assert [(q.sql, q.user, q.database) for q in queries] == [
        ("SELECT 1", "alice", "shop"),
        ("SELECT 2", "bob", "crm"),
    ]
    assert reasons == {}


# -- syslog and logplex ----------------------------------------------------------------

SYSLOG = "Feb 11 13:15:40 host postgres[{pid}]: [{seq}] {content}"
P = "db=shop,user=alice,app=psql,client=[local] "


def syslog(*lines: tuple[int, str, str]) -> str:
    return "".join(SYSLOG.format(pid=pid, seq=seq, content=c) + "\n" for pid, seq, c in lines)


SYSLOG_CASES = [
    pytest.param(
        syslog(
            (1, "7-1", P + "LOG:  duration: 1 ms  statement: SELECT a,"),
            (1, "7-2", "#011       b"),
            (1, "7-3", "#011FROM t"),
        ),
        [("SELECT a,\n       b\nFROM t", "1")],
        {},
        id="tab-continuation",
    ),
    pytest.param(
        syslog(
            (1, "8-1", P + "LOG:  duration: 1 ms  statement: SELECT aaaa"),
            (1, "8-2", " FROM t WHERE"),
            (1, "8-3", " x = 1"),
        ),
        [("SELECT aaaa FROM t WHERE x = 1", "1")],
        {},
        id="long-line-split",
    ),
    pytest.param(
        syslog(
            (1, "5-1", P + "LOG:  duration: 1 ms  execute S_1: SELECT $1,"),
            (2, "9-1", P + "LOG:  duration: 2 ms  statement: SELECT 2"),
            (1, "5-2", "#011$2"),
            (1, "5-3", P + "DETAIL:  parameters: $1 = 'a', $2 = 'b'"),
        ),
        [("SELECT $1,\n$2", "1"), ("SELECT 2", "2")],
        {},
        id="interleaved-pids",
    ),
    pytest.param(
        syslog((1, "3", P + "LOG:  duration: 1 ms  statement: SELECT a#012#011FROM t")),
        [("SELECT a\nFROM t", "1")],
        {},
        id="split-messages-off",
    ),
    pytest.param(
        "Feb 11 13:15:41 host systemd[1]: Started PostgreSQL Cluster 16-main.\n"
        + syslog((1, "1-1", P + "LOG:  duration: 1 ms  statement: SELECT 1"))
        + "garbage\n",
        [("SELECT 1", "1")],
        {"log line of another program": 1, "unrecognised line": 1},
        id="other-lines",
    ),
    pytest.param(
        syslog(
            (1, "4-1", P + "ERROR:  division by zero"),
            (1, "4-2", P + "STATEMENT:  SELECT 1/0"),
        ),
        [],
        {FAILED: 1},
        id="error",
    ),
]


@pytest.mark.parametrize(("text", "expected", "skip_reasons"), SYSLOG_CASES)
def test_syslog(text: str, expected: list[tuple[str, str]], skip_reasons: dict[str, int]) -> None:
    queries, reasons = read_text(text)
    assert [(q.sql, q.session) for q in queries] == expected
    assert reasons == skip_reasons
    assert all((q.user, q.database, q.application) == ("alice", "shop", "psql") for q in queries)


def test_syslog_parameters_of_interleaved_execute() -> None:
    (execute, _), _ = read_text(str(SYSLOG_CASES[2].values[0]))
    assert execute.parameters == ("a", "b")


def test_logplex_records() -> None:
    envelope = "2019-03-14T00:23:00+00:00 app[postgres.{}]: [GREEN] [{}] "
    text = "".join(
        envelope.format(pid, seq) + content + "\n"
        for pid, seq, content in [
            (7, "20-1", " sql_error_code = 00000 LOG:  duration: 5 ms  execute <unnamed>: SELECT"),
            (7, "20-2", "        a"),
            (7, "21-1", " sql_error_code = 00000 DETAIL:  parameters: $1 = '1'"),
            (8, "3-1", " sql_error_code = 40P01 ERROR:  deadlock detected"),
            (8, "3-2", "\tProcess 8 waits for ShareLock"),
            (8, "3-3", " sql_error_code = 40P01 STATEMENT:  UPDATE t SET a = 1"),
        ]
    )
    queries, reasons = read_text(text)
    assert [(q.sql, q.duration_ms, q.parameters) for q in queries] == [
        ("SELECT\n        a", 5.0, ("1",))
    ]
    assert reasons == {FAILED: 1}


# -- parameters --------------------------------------------------------------------------

PARAMETER_CASES = [
    pytest.param("$1 = '5'", ("5",), False, id="one"),
    pytest.param("$1 = 'a, b', $2 = 'c'", ("a, b", "c"), False, id="comma-in-value"),
    pytest.param("$1 = 'it''s', $2 = NULL, $3 = ''", ("it's", None, ""), False, id="quotes-null"),
    pytest.param("$1 = 'x, $2 = ''y''', $2 = 'z'", ("x, $2 = 'y'", "z"), False, id="fake-param"),
    pytest.param("$1 = 'line 1\nline 2'", ("line 1\nline 2",), False, id="newline"),
    pytest.param("$2 = 'b', $1 = 'a'", ("a", "b"), False, id="order"),
    pytest.param("$1 = 'abcdefgh...', $2 = '1'", ("abcdefgh...", "1"), True, id="truncated"),
    pytest.param("$1 = 'abcdefgh'...", ("abcdefgh",), True, id="truncated-after-quote"),
    pytest.param("$1 = 'unterminated", (), False, id="unterminated"),
    pytest.param("nonsense", (), False, id="nonsense"),
]


@pytest.mark.parametrize(("text", "values", "truncated"), PARAMETER_CASES)
def test_read_parameters(text: str, values: tuple[str | None, ...], truncated: bool) -> None:
    assert read_parameters(text) == (values, truncated)


M = "2026-11-22 01:02:03.456 UTC [{}] postgres@shop "


def log(*entries: tuple[int, str]) -> str:
    return "".join(M.format(pid) + message + "\n" for pid, message in entries)


EXEC = "SELECT * FROM t WHERE a = $1"

ATTACH_CASES = [
    pytest.param(
        log(
            (1, f"LOG:  duration: 0.2 ms  bind <unnamed>: {EXEC}"),
            (1, "DETAIL:  parameters: $1 = 'bind'"),
            (1, f"LOG:  duration: 0.1 ms  execute <unnamed>: {EXEC}"),
            (1, "DETAIL:  parameters: $1 = 'execute'"),
        ),
        [(("execute",), True)],
        id="execute-detail-pg14",
    ),
    pytest.param(
        log(
            (1, f"LOG:  duration: 0.1 ms  execute <unnamed>: {EXEC}"),
            (1, "DETAIL:  Parameters: $1 = 'pg17'"),
        ),
        [(("pg17",), True)],
        id="capitalised-pg17",
    ),
    pytest.param(
        log(
            (1, f"LOG:  duration: 0.1 ms  execute <unnamed>: {EXEC}"),
            (1, f"LOG:  duration: 0.2 ms  bind <unnamed>: {EXEC}"),
            (1, "DETAIL:  parameters: $1 = 'next bind'"),
        ),
        [((), True)],
        id="bind-detail-not-for-previous-execute",
    ),
    pytest.param(
        log(
            (1, f"LOG:  duration: 0.1 ms  execute <unnamed>: {EXEC}"),
            (1, "DETAIL:  parameters: $1 = 'a'"),
            (1, "ERROR:  canceling statement due to user request"),
            (1, "CONTEXT:  unnamed portal with parameters: $1 = 'b'"),
            (1, "STATEMENT:  SELECT 2"),
        ),
        [(("a",), True)],
        id="context-parameters-ignored",
    ),
    pytest.param(
        log(
            (1, f"LOG:  duration: 0.1 ms  execute <unnamed>: {EXEC}"),
            (1, "DETAIL:  parameters: $1 = 'abcdefgh...'"),
        ),
        [(("abcdefgh...",), False)],
        id="truncated-not-replayable",
    ),
    pytest.param(
        log(
            (1, f"LOG:  execute S_1: {EXEC}"),
            (1, "DETAIL:  parameters: $1 = 'multi\n\tline, with comma'"),
            (1, "LOG:  duration: 0.1 ms"),
        ),
        [(("multi\nline, with comma",), True)],
        id="log-statement-execute",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ATTACH_CASES)
def test_parameters_attach(text: str, expected: list[tuple[tuple[str, ...], bool]]) -> None:
    queries, _ = read_text(text)
    assert [(q.parameters, q.replayable) for q in queries] == expected


# -- transactions and applications -----------------------------------------------------


def test_transactions_from_begin_and_commit() -> None:
    text = log(
        (1, "LOG:  duration: 1 ms  statement: SELECT 0"),
        (1, "LOG:  duration: 1 ms  statement: BEGIN"),
        (2, "LOG:  duration: 1 ms  statement: SELECT 'other session'"),
        (1, "LOG:  duration: 1 ms  statement: UPDATE t SET a = 1"),
        (1, "LOG:  duration: 1 ms  statement: ROLLBACK TO SAVEPOINT s"),
        (1, "LOG:  duration: 1 ms  statement: COMMIT"),
        (1, "LOG:  duration: 1 ms  statement: SELECT 1"),
        (1, "LOG:  duration: 1 ms  statement: start transaction read only"),
        (1, "LOG:  duration: 1 ms  statement: end"),
    )
    queries, _ = read_text(text)
    assert [(q.sql.split()[0], q.transaction) for q in queries] == [
        ("SELECT", None),
        ("BEGIN", "1:1"),
        ("SELECT", None),
        ("UPDATE", "1:1"),
        ("ROLLBACK", "1:1"),
        ("COMMIT", "1:1"),
        ("SELECT", None),
        ("start", "1:2"),
        ("end", "1:2"),
    ]


def test_application_from_prefix() -> None:
    text = (
        f"{TS} UTC [5]: [1-1] user=u,db=d,app=shop-api,client=::1 LOG:  statement: SELECT 1\n"
        f"{TS} UTC [5]: [2-1] user=u,db=d,app=shop-api,client=::1 LOG:  duration: 1.000 ms\n"
    )
    (query,), _ = read_text(text)
    assert (query.application, query.duration_ms, query.user) == ("shop-api", 1.0, "u")


# -- csvlog --------------------------------------------------------------------------------


def csv_row(message: str, columns: int, severity: str = "LOG", **fields: str) -> list[str]:
    row = [
        "2026-11-22 01:02:03.456 UTC",
        "alice",
        "shop",
        fields.get("pid", "42"),
        "[local]",
        "6b022d48.3177",
        "1",
        "SELECT",
        "2026-11-22 01:02:00 UTC",
        fields.get("vxid", "3/0"),
        "0",
        severity,
        "00000",
        message,
        fields.get("detail", ""),
        "",
        "",
        "",
        "",
        fields.get("query", ""),
        "",
        "",
        "billing",
        "client backend",
        "",
        "-123",
    ]
    return row[:columns]


def csv_text(*rows: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize(
    "columns",
    [
        pytest.param(22, id="22-columns-pg8.4"),
        pytest.param(23, id="23-columns-pg9-12"),
        pytest.param(24, id="24-columns-pg13"),
        pytest.param(26, id="26-columns-pg14"),
    ],
)
def test_csvlog_column_counts(columns: int) -> None:
    text = csv_text(
        csv_row(
            'duration: 2.5 ms  execute <unnamed>: SELECT "a"\nFROM t WHERE b = $1',
            columns,
            detail="parameters: $1 = 'x, ''y'''",
        ),
        csv_row("duration: 1 ms  bind S_1: SELECT 1", columns, detail="parameters: $1 = '1'"),
        csv_row("division by zero", columns, severity="ERROR", query="SELECT 1/0"),
        csv_row("statement: BEGIN", columns, pid="43", vxid="4/7"),
    )
    queries, reasons = read_text(text)
    assert [(q.sql, q.duration_ms, q.parameters, q.line) for q in queries] == [
        ('SELECT "a"\nFROM t WHERE b = $1', 2.5, ("x, 'y'",), 1),
        ("BEGIN", None, (), 5),
    ]
    assert reasons == {FAILED: 1}
    first = queries[0]
    assert (first.user, first.database, first.session, first.timestamp) == (
        "alice",
        "shop",
        "42",
        "2026-11-22 01:02:03.456 UTC",
    )
    assert first.application == ("billing" if columns >= 23 else None)
    assert queries[1].transaction == "43:1"  # BEGIN starts one; vxid 4/7 is overridden


def test_csvlog_bad_rows_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "postgresql.csv"
    path.write_text(
        csv_text(csv_row("duration: 1 ms  statement: SELECT 1", 26), ["a", "b"])
        + 'x,"unterminated\n',
        encoding="utf-8",
    )
    queries, stats = read_input(str(path))
    assert [q.sql for q in queries] == ["SELECT 1"]
    assert stats.skip_reasons == {"CSV row that is not a csvlog record": 2}


def test_csvlog_by_extension_when_the_first_row_is_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write("not,a,header\n" + csv_text(csv_row("statement: SELECT 1", 26)))
    queries, stats = read_input(str(path))
    assert [q.sql for q in queries] == ["SELECT 1"]
    assert stats.skip_reasons == {"CSV row that is not a csvlog record": 1}


def test_csvlog_huge_field() -> None:
    values = ", ".join(f"({i})" for i in range(40_000))  # over csv's default 128 kB limit
    queries, _ = read_text(csv_text(csv_row(f"statement: INSERT INTO t VALUES {values}", 26)))
    assert len(queries[0].sql) > 131072


# -- jsonlog -----------------------------------------------------------------------------


def jsonlog(*records: dict[str, object]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_jsonlog_with_omitted_keys() -> None:
    text = jsonlog(
        {
            "timestamp": "t0",
            "pid": 9,
            "error_severity": "LOG",
            "message": "database system is ready",
        },
        {"pid": 10, "error_severity": "LOG", "message": "duration: 1 ms  statement: SELECT 1"},
        {
            "timestamp": "t2",
            "user": "alice",
            "dbname": "shop",
            "pid": 11,
            "vxid": "3/9",
            "txid": 0,
            "error_severity": "LOG",
            "message": "duration: 2 ms  execute <unnamed>: SELECT $1",
            "detail": "parameters: $1 = NULL",
            "application_name": "api",
        },
        {"pid": 12, "error_severity": "ERROR", "message": "oops", "statement": "SELECT x"},
    )
    queries, reasons = read_text(text + "not json\n[1]\n" + jsonlog({"level": "info"}))
    assert [
        (q.sql, q.session, q.timestamp, q.user, q.database, q.application, q.parameters)
        for q in queries
    ] == [
        ("SELECT 1", "10", None, None, None, None, ()),
        ("SELECT $1", "11", "t2", "alice", "shop", "api", (None,)),
    ]
    assert queries[1].transaction == "11:3/9"
    assert reasons == {
        FAILED: 1,
        "line that is not a JSON object": 2,
        "JSON line that is not a PostgreSQL log record": 1,
    }


def test_cnpg_and_cloudsql_envelopes() -> None:
    cnpg = jsonlog(
        {"level": "info", "logger": "instance-manager", "msg": "starting"},
        {
            "logger": "postgres",
            "msg": "record",
            "record": {
                "log_time": "2022-11-27 18:58:02.096 UTC",
                "user_name": "app",
                "database_name": "shop",
                "process_id": "600",
                "error_severity": "LOG",
                "message": "duration: 0.5 ms  statement: SELECT 1",
                "application_name": "web",
            },
        },
    )
    (query,), reasons = read_text(cnpg)
    assert (query.sql, query.session, query.user, query.application) == (
        "SELECT 1",
        "600",
        "app",
        "web",
    )
    assert reasons == {"JSON line that is not a PostgreSQL log record": 1}
    cloudsql = jsonlog(
        {
            "textPayload": "[7]: [1-1] db=shop,user=app LOG:  duration: 3 ms  statement: SELECT a",
            "timestamp": "T1",
        },
        {"textPayload": "\tFROM t", "timestamp": "T1"},
        {"jsonPayload": {}, "timestamp": "T2"},
    )
    (query,), reasons = read_text(cloudsql)
    assert (query.sql, query.session, query.timestamp, query.database) == (
        "SELECT a\nFROM t",
        "7",
        "T1",
        "shop",
    )
    assert reasons == {"JSON line that is not a PostgreSQL log record": 1}


# -- auto_explain ----------------------------------------------------------------------

TEXT_PLAN = "\n\t".join(
    [
        "LOG:  duration: 30.1 ms  plan:",
        "Query Text: SELECT id",
        "  FROM orders WHERE customer_id = 42",
        "Seq Scan on orders  (cost=0.00..5819.00 rows=8 width=22)"
        " (actual time=2.3..15.1 rows=9 loops=1)",
        "  Filter: (customer_id = 42)",
    ]
)
QUERY = "SELECT id\n  FROM orders WHERE customer_id = 42"
JSON_PLAN = "LOG:  duration: 78.1 ms  plan:\n\t" + json.dumps(
    {"Query Text": "SELECT count(*) FROM t", "Plan": {"Node Type": "Aggregate"}}, indent=2
).replace("\n", "\n\t")

AUTO_EXPLAIN_CASES = [
    pytest.param(
        log((1, TEXT_PLAN), (1, f"LOG:  duration: 32.0 ms  statement: {QUERY};")),
        [(QUERY, 32.0, 6)],
        id="simple-protocol-plan-first",
    ),
    pytest.param(
        log(
            (1, f"LOG:  duration: 32.0 ms  execute <unnamed>: {QUERY}"),
            (2, "LOG:  duration: 1 ms  statement: SELECT 'between'"),
            (1, "DETAIL:  parameters: $1 = '42'"),
            (1, TEXT_PLAN),
        ),
        [("SELECT 'between'", 1.0, 3), (QUERY, 32.0, 1)],
        id="extended-protocol-plan-after",
    ),
    pytest.param(
        log((1, f"LOG:  statement: {QUERY}"), (1, TEXT_PLAN), (1, "LOG:  duration: 33.0 ms")),
        [(QUERY, 33.0, 1)],
        id="log-statement-plan-before-duration",
    ),
    pytest.param(
        log((1, TEXT_PLAN), (1, "LOG:  duration: 1 ms  statement: SELECT 2")),
        [(QUERY, 30.1, 1), ("SELECT 2", 1.0, 6)],
        id="plan-only-then-other-statement",
    ),
    pytest.param(log((1, TEXT_PLAN)), [(QUERY, 30.1, 1)], id="plan-only-at-end"),
    pytest.param(
        log((1, JSON_PLAN), (1, "LOG:  duration: 80 ms  statement: SELECT count(*) FROM t")),
        [("SELECT count(*) FROM t", 80.0, 8)],
        id="json-plan",
    ),
]


@pytest.mark.parametrize(("text", "expected"), AUTO_EXPLAIN_CASES)
def test_auto_explain_counted_once(text: str, expected: list[tuple[str, float, int]]) -> None:
    queries, reasons = read_text(text)
    assert [(q.sql, q.duration_ms, q.line) for q in queries] == expected
    assert reasons == {}
    planned = [q for q in queries if q.sql in (QUERY, "SELECT count(*) FROM t")]
    assert len(planned) == 1 and planned[0].observed_plan is not None


def test_auto_explain_first_plan_late_in_the_log() -> None:
    """Executes are passed on after their DETAIL until the log shows a plan (its first
    lines are checked for one): a first plan that comes after other backends' entries
    then finds its execute read already, and is counted once, as a skip."""
    filler = [(2, f"LOG:  duration: 1 ms  statement: SELECT {n}") for n in range(250)]
    text = log(
        *filler,
        (1, f"LOG:  duration: 32.0 ms  execute <unnamed>: {QUERY}"),
        (1, "DETAIL:  parameters: $1 = '42'"),
        (2, "LOG:  duration: 1 ms  statement: SELECT 'between'"),
        (1, TEXT_PLAN),
        (1, f"LOG:  duration: 32.0 ms  execute <unnamed>: {QUERY}"),
        (2, "LOG:  duration: 1 ms  statement: SELECT 'between again'"),
        (1, TEXT_PLAN),
    )
    queries, reasons = read_text(text)
    executes = [q for q in queries if q.sql == QUERY]
    assert [(q.parameters, q.observed_plan is not None) for q in executes] == [
        (("42",), False),
        ((), True),  # plans seen: the second execute waited for its plan
    ]
    assert len(queries) == 250 + 2 + 2
    assert reasons == {"auto_explain plan of an execute already read": 1}


def test_auto_explain_plan_attached_as_logged() -> None:
    (text_query, _), _ = read_text(str(AUTO_EXPLAIN_CASES[3].values[0]))
    assert text_query.observed_plan == (
        "Seq Scan on orders  (cost=0.00..5819.00 rows=8 width=22) (actual time=2.3..15.1 "
        "rows=9 loops=1)\n  Filter: (customer_id = 42)"
    )
    (json_query,), _ = read_text(str(AUTO_EXPLAIN_CASES[5].values[0]))
    assert json_query.observed_plan == {
        "Query Text": "SELECT count(*) FROM t",
        "Plan": {"Node Type": "Aggregate"},
    }


@pytest.mark.parametrize(
    ("body", "query"),
    [
        pytest.param(
            "\nQuery Text: select 1\nResult  (cost=0.00..0.01 rows=1 width=4)",
            "select 1",
            id="text",
        ),
        pytest.param("\nQuery Text: select 1", "select 1", id="text-no-plan"),
        pytest.param('\n{"Query Text": "select 1", "Plan": {}}', "select 1", id="json"),
        pytest.param(
            '\nQuery Text: "select \\"1\\""\nPlan: \n  Node Type: "Result"', 'select "1"', id="yaml"
        ),
        pytest.param(
            "\n<explain><Query><Query-Text>select 1 &lt; 2</Query-Text></Query></explain>",
            "select 1 < 2",
            id="xml",
        ),
        pytest.param("\n{not json", None, id="bad-json"),
        pytest.param("\nSeq Scan on t  (cost=0.00..1.00 rows=1 width=4)", None, id="no-query-text"),
    ],
)
def test_parse_plan_message(body: str, query: str | None) -> None:
    parsed = parse_plan_message(body)
    assert (parsed[0] if parsed else None) == query


# -- formats, compression, stdin ---------------------------------------------------------

STDERR_LINE = M.format(1) + "LOG:  duration: 1 ms  statement: SELECT 1\n"


@pytest.mark.parametrize(
    ("name", "write"),
    [
        pytest.param("pg.log.bz2", bz2.compress, id="bz2"),
        pytest.param("pg.log.xz", lzma.compress, id="xz"),
        pytest.param("pg.log", gzip.compress, id="gzip-by-magic"),
    ],
)
def test_compressed_inputs(tmp_path: Path, name: str, write: Callable[[bytes], bytes]) -> None:
    path = tmp_path / name
    path.write_bytes(write(STDERR_LINE.encode()))
    queries, _ = read_input(str(path))
    assert [q.sql for q in queries] == ["SELECT 1"]


@pytest.mark.parametrize("name", ["pg.log.bz2", "pg.log.xz"])
def test_bad_compressed_input_is_input_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not compressed")
    with pytest.raises(InputError, match=r"^cannot read .*: not a valid (bz2|xz) file$"):
        read_input(str(path))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_stdin(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    data = STDERR_LINE.encode()
    stdin = io.TextIOWrapper(
        io.BufferedReader(io.BytesIO(gzip.compress(data) if compress else data))
    )
    monkeypatch.setattr(sys, "stdin", stdin)
    queries, _ = read_input("-")
    assert [(q.sql, q.source) for q in queries] == [("SELECT 1", "<stdin>")]
    assert not stdin.closed


@pytest.mark.parametrize(
    ("log_format", "expected"),
    [
        pytest.param("stderr", ["SELECT 1"], id="stderr"),
        pytest.param(
            "SQL",
            [STDERR_LINE.strip()],
            id="sql",
        ),
        pytest.param("csvlog", [], id="csvlog"),
    ],
)
def test_log_format_override(tmp_path: Path, log_format: str, expected: list[str]) -> None:
    path = tmp_path / "pg.log"
    path.write_text(STDERR_LINE, encoding="utf-8")
    queries, _ = read_input(str(path), log_format=log_format)
    assert [q.sql for q in queries] == expected


def test_unknown_log_format_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "pg.log"
    path.write_text(STDERR_LINE, encoding="utf-8")
    with pytest.raises(InputError, match=r"^unknown log format 'xml' \(choose from: .*stderr"):
        read_input(str(path), log_format="xml")
    with pytest.raises(InputError, match="unknown log format"):
        PgLogReader(str(path), log_format="xml")


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(
            [
                "2026-11-22 01:02:03 UTC,a,b,1,,s,1,,t,3/1,0,",
                "LOG",
                "ERROR",
                ",00000,",
                '"',
                "duration: 1 ms  ",
                "execute x: ",
                "plan:\n",
                "parameters: $1 = '",
                ",",
                "\n",
            ],
            id="csvlog",
        ),
        pytest.param(
            [
                '{"pid": 1, "error_severity": "',
                "LOG",
                "DETAIL",
                '", "message": "',
                "duration: 1 ms  ",
                "statement: ",
                "plan:\\n{",
                "parameters: $1 = '",
                '"}',
                "\n",
                "{",
            ],
            id="jsonlog",
        ),
        pytest.param(
            [
                "Feb 11 13:15:40 h postgres[1]: ",
                "[1-1] ",
                "[1-2] ",
                "#011",
                "LOG:  ",
                "ERROR:  ",
                "duration: 1 ms  ",
                "statement: ",
                "execute x: ",
                "DETAIL:  parameters: $1 = '",
                "plan:\n",
                "\n",
            ],
            id="syslog",
        ),
    ],
)
def test_readers_never_raise_on_arbitrary_input(pieces: list[str]) -> None:
    rng = random.Random(0)
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(40)))
        read_text(pieces[0] + text)
