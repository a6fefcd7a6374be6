"""Capture: splitting SQL text and reading PostgreSQL stderr logs."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from explainer.capture import (
    CapturedQuery,
    PgLogReader,
    read_input,
    read_pg_log,
    read_sql_text,
    split_statements,
)
from explainer.capture.pglog import parse_parameters, sniff
from explainer.capture.prefix import DETECT_LINES
from explainer.errors import InputError

CORPUS = Path(__file__).parents[1].parent / "shared" / "corpus" / "logs" / "generated"
LMDS0_LOG = CORPUS / "pg15_stderr_lmds0_prefix-m-p-q-u-d.log"
LOG_STATEMENT_LOG = CORPUS / "pg15_stderr_log_statement_all_log_duration_prefix-t-p-l.log"

# -- SQL text ---------------------------------------------------------------------------

SPLIT_CASES = [
    pytest.param("select 1; select 2", [("select 1", 1), ("select 2", 1)], id="simple"),
    pytest.param("select 1;\nselect 2", [("select 1", 1), ("select 2", 2)], id="last-no-semicolon"),
    pytest.param(
        "select $$a;b$$; select $t$x;$$;y$t$; select 3",
        [("select $$a;b$$", 1), ("select $t$x;$$;y$t$", 1), ("select 3", 1)],
        id="dollar-quotes-with-semicolons",
    ),
    pytest.param(
        "CREATE FUNCTION f() RETURNS int AS $body$\nBEGIN\n  RETURN 1; -- ;\nEND;\n"
        "$body$ LANGUAGE plpgsql;\nselect f()",
        [
            (
                "CREATE FUNCTION f() RETURNS int AS $body$\nBEGIN\n  RETURN 1; -- ;\nEND;\n"
                "$body$ LANGUAGE plpgsql",
                1,
            ),
            ("select f()", 6),
        ],
        id="function-body",
    ),
    pytest.param(
        "select 1 -- a;b\n;\nselect 2",
        [("select 1", 1), ("select 2", 3)],
        id="line-comment-with-semicolon",
    ),
    pytest.param(
        "/* a; /* nested; */ still comment; */ select 1; select 2",
        [("select 1", 1), ("select 2", 1)],
        id="nested-block-comment",
    ),
    pytest.param(
        "select 1 /* inner; */ + 1; select 2",
        [("select 1 /* inner; */ + 1", 1), ("select 2", 1)],
        id="comment-inside-kept",
    ),
    pytest.param(
        "select 'it''s; fine'; select 2",
        [("select 'it''s; fine'", 1), ("select 2", 1)],
        id="doubled-quote",
    ),
    pytest.param(
        r"select E'\''; select 2",
        [(r"select E'\''", 1), ("select 2", 1)],
        id="e-string-escaped-quote",
    ),
    pytest.param(
        r"select e'a\';b'; select 2",
        [(r"select e'a\';b'", 1), ("select 2", 1)],
        id="e-string-semicolon",
    ),
    pytest.param(
        r"select 'a\'; select 2",
        [(r"select 'a\'", 1), ("select 2", 1)],
        id="backslash-not-escape-in-standard-string",
    ),
    pytest.param(
        'select 1 as "a;b", 2 as "x"";y"; select 2',
        [('select 1 as "a;b", 2 as "x"";y"', 1), ("select 2", 1)],
        id="quoted-identifiers",
    ),
    pytest.param(
        "select $1; select a$b$c from t; select 3",
        [("select $1", 1), ("select a$b$c from t", 1), ("select 3", 1)],
        id="dollar-not-a-quote",
    ),
    pytest.param(
        "-- header comment\n\n;;\n/* only a comment */;\n  select 1 ;  -- trailing\n",
        [("select 1", 5)],
        id="empty-and-comment-only-pieces",
    ),
    pytest.param(
        "\\timing on\nselect 1;\n\\x\nselect\n  2;\n",
        [("select 1", 2), ("select\n  2", 4)],
        id="meta-commands",
    ),
    pytest.param(
        "select 1\n\\gx\nselect 2 \\g\n",
        [("select 1", 1), ("select 2", 3)],
        id="meta-g-ends-statement",
    ),
    pytest.param(
        "COPY t (a) FROM stdin;\n1\n2;3\n\\.\nselect 1;",
        [("COPY t (a) FROM stdin", 1), ("select 1", 5)],
        id="copy-data-skipped",
    ),
    pytest.param(
        "selec 1; select 2",
        [("selec 1", 1), ("select 2", 1)],
        id="invalid-sql-kept",
    ),
    pytest.param(
        "select 1; select 'unterminated; select 3",
        [("select 1", 1), ("select 'unterminated; select 3", 1)],
        id="unterminated-string-runs-to-end",
    ),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), SPLIT_CASES)
def test_split_statements(text: str, expected: list[tuple[str, int]]) -> None:
    queries = split_statements(text, source="q.sql")
    assert [(q.sql, q.line) for q in queries] == expected
    assert all(q.source == "q.sql" for q in queries)


@pytest.mark.parametrize(
    ("text", "skip_reasons"),
    [
        ("\\timing\nselect 1;\n\\set x 1\n", {"psql meta-command": 2}),
        ("COPY t FROM stdin;\na\nb\n\\.\n", {"COPY data line": 2}),
        ("select 1; -- c\n", {}),
    ],
)
def test_sql_text_stats(text: str, skip_reasons: dict[str, int]) -> None:
    queries, stats = read_sql_text(text)
    assert stats.queries == len(queries)
    assert stats.skip_reasons == skip_reasons
    assert stats.skipped == sum(skip_reasons.values())


def test_split_never_raises_on_arbitrary_text() -> None:
    rng = random.Random(0)
    alphabet = ["select", " ", "\n", ";", "'", '"', "$", "$a$", "--", "/*", "*/", "\\", "E", "x"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        for query in split_statements(text):
            assert query.sql and query.sql == query.sql.strip()
            assert query.sql in text


def test_split_line_numbers_with_crlf() -> None:
    queries = split_statements("select 1;\r\n\r\nselect 2;\r\n")
    assert [(q.sql, q.line) for q in queries] == [("select 1", 1), ("select 2", 3)]


# -- stderr logs ------------------------------------------------------------------------

M = "2026-11-22 01:02:03.456 UTC [{}] postgres@shop "  # %m [%p] %q%u@%d
T = "2026-11-22 01:02:03 UTC [{}]: [1-1] user=app,db=crm,app=api,client=10.0.0.1 "  # %t...


def log(prefix: str, *entries: tuple[int, str]) -> str:
    """A log excerpt: one ``prefix`` line per (pid, message); ``\n\t`` continues one."""
    return "".join(prefix.format(pid) + message + "\n" for pid, message in entries)


def _read(text: str) -> tuple[list[CapturedQuery], dict[str, int]]:
    reader = PgLogReader(text.splitlines(keepends=True), source="pg.log")
    queries = list(reader)
    assert reader.stats.queries == len(queries)
    assert reader.stats.skipped == sum(reader.stats.skip_reasons.values())
    return queries, reader.stats.skip_reasons


SELECT_ID = "SELECT * FROM t WHERE id = $1"
FAILED = {"statement failed (ERROR)": 1}

LOG_CASES = [
    pytest.param(
        log(M, (1, "LOG:  duration: 0.123 ms  statement: SELECT 1")),
        [("SELECT 1", 0.123, "1", 1)],
        {},
        id="lmds-statement",
    ),
    pytest.param(
        log(
            M,
            (1, "LOG:  duration: 2.5 ms  statement: SELECT a\n\tFROM t\n\t\tWHERE x = 1;\n\t"),
            (1, "LOG:  duration: 1 ms  statement: SELECT 2"),
        ),
        [("SELECT a\nFROM t\n\tWHERE x = 1", 2.5, "1", 1), ("SELECT 2", 1.0, "1", 5)],
        {},
        id="multi-line-statement",
    ),
    pytest.param(
        log(T, (7, "LOG:  statement: SELECT 1"), (7, "LOG:  duration: 0.250 ms")),
        [("SELECT 1", 0.25, "7", 1)],
        {},
        id="log-statement-then-duration",
    ),
    pytest.param(
        log(
            T,
            (1, "LOG:  statement: SELECT 1"),
            (2, "LOG:  statement: SELECT\n\t2"),
            (1, "LOG:  duration: 1.5 ms"),
            (2, "LOG:  duration: 2.5 ms"),
        ),
        [("SELECT 1", 1.5, "1", 1), ("SELECT\n2", 2.5, "2", 2)],
        {},
        id="interleaved-pids",
    ),
    pytest.param(
        log(T, (1, "LOG:  statement: SELECT a"), (1, "LOG:  statement: SELECT b")),
        [("SELECT a", None, "1", 1), ("SELECT b", None, "1", 2)],
        {},
        id="log-statement-without-log-duration",
    ),
    pytest.param(
        log(
            M,
            (4, f"LOG:  duration: 0.7 ms  parse <unnamed>: {SELECT_ID}"),
            (4, f"LOG:  duration: 0.3 ms  bind <unnamed>: {SELECT_ID}"),
            (4, "DETAIL:  parameters: $1 = '5'"),
            (4, f"LOG:  duration: 0.1 ms  execute <unnamed>: {SELECT_ID}"),
            (4, "DETAIL:  parameters: $1 = '5'"),
        ),
        [(SELECT_ID, 0.1, "4", 4)],
        {},
        id="extended-protocol-lmds",
    ),
    pytest.param(
        log(
            T,
            (4, "LOG:  duration: 0.7 ms"),  # parse
            (4, "LOG:  duration: 0.3 ms"),  # bind
            (4, f"LOG:  execute S_1: {SELECT_ID}"),
            (4, "DETAIL:  parameters: $1 = '5'"),
            (4, "LOG:  duration: 0.1 ms"),
        ),
        [(SELECT_ID, 0.1, "4", 3)],
        {},
        id="extended-protocol-log-statement",
    ),
    pytest.param(
        log(
            T,
            (1, "LOG:  statement: SELECT 1/0"),
            (1, "ERROR:  division by zero"),
            (1, "STATEMENT:  SELECT 1/0"),
            (1, "LOG:  statement: SELECT 2"),
            (1, "LOG:  duration: 1 ms"),
        ),
        [("SELECT 2", 1.0, "1", 4)],
        FAILED,
        id="error-drops-statement",
    ),
    pytest.param(
        log(
            M,
            (1, "ERROR:  null value in column"),
            (1, "DETAIL:  Failing row contains (1)."),
            (1, "STATEMENT:  INSERT INTO t VALUES (1)"),
        ),
        [],
        FAILED,
        id="error-statement-echo-lmds",
    ),
    pytest.param(
        log(
            M,
            (1, 'LOG:  temporary file: path "base/pgsql_tmp/t", size 8192'),
            (1, "STATEMENT:  SELECT big"),
            (1, "HINT:  something"),
            (1, "LOG:  connection authorized: user=postgres database=shop"),
        ),
        [],
        {},
        id="other-messages-silent",
    ),
    pytest.param(
        log(
            T,
            (1, "LOG:  statement: SELECT a"),
            (1, "LOG:  duration: 3.000 ms  statement: SELECT a"),
        ),
        [("SELECT a", 3.0, "1", 1)],
        {},
        id="log-statement-and-lmds-counted-once",
    ),
    pytest.param(
        "2026-11-21 23:45:03.115 UTC [10] LOG:  database system is ready\n"
        "not a log line\n"
        "\torphan continuation\n"
        + log(
            M,
            (3, "LOG:  duration: 1 ms  statement: SELECT '\ufffd'"),
            (3, "LOG:  duration: 5 ms  plan:\n\tnot a plan"),
        ),
        [("SELECT '\ufffd'", 1.0, "3", 4)],
        {
            "unrecognised line": 1,
            "continuation line without a log entry": 1,
            "auto_explain plan that could not be read": 1,
        },
        id="garbage-counted-not-fatal",
    ),
    pytest.param(
        log(M, (1, "LOG:  duration: 1 ms  statement: ;")),
        [],
        {"empty statement": 1},
        id="empty-statement",
    ),
]


@pytest.mark.parametrize(("text", "expected", "skip_reasons"), LOG_CASES)
def test_pg_log(
    text: str,
    expected: list[tuple[str, float | None, str, int]],
    skip_reasons: dict[str, int],
) -> None:
    queries, reasons = _read(text)
    assert [(q.sql, q.duration_ms, q.session, q.line) for q in queries] == expected
    assert reasons == skip_reasons


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        (
            M.format(12) + "LOG:  duration: 1 ms  statement: SELECT 1",
            ("2026-11-22 01:02:03.456 UTC", "12", "postgres", "shop"),
        ),
        (
            T.format(13) + "LOG:  duration: 1 ms  statement: SELECT 1",
            ("2026-11-22 01:02:03 UTC", "13", "app", "crm"),
        ),
        (
            "2026-11-22 01:02:03 UTC [14]: [1-1] user=,db=,app=,client= LOG:  duration: 1 ms"
            "  statement: SELECT 1",
            ("2026-11-22 01:02:03 UTC", "14", None, None),
        ),
        (
            "2026-11-22 01:02:03.456 UTC [15] LOG:  duration: 1 ms  statement: SELECT 1",
            ("2026-11-22 01:02:03.456 UTC", "15", None, None),
        ),
    ],
)
def test_log_prefix_fields(line: str, fields: tuple[str, str, str | None, str | None]) -> None:
    (query,), _ = _read(line)
    assert (query.timestamp, query.session, query.user, query.database) == fields
    assert query.source == "pg.log"


def test_pid_with_session_line_number_prefix() -> None:
    # %t [%p-%l] %u@%d, as in dexter's example log
    text = (
        "2017-12-19 02:50:28 UTC [417-3935] dexter@dexter_test LOG:  duration: 21.701 ms"
        "  execute <unnamed>: SELECT * FROM posts WHERE id = $1\n"
        "2017-12-19 02:50:28 UTC [417-3935] dexter@dexter_test DETAIL:  parameters: $1 = '1'\n"
    )
    (query,), _ = _read(text)
    assert (query.session, query.user, query.database) == ("417", "dexter", "dexter_test")
    assert query.parameters == ("1",)


def test_continuation_with_expanded_tabs() -> None:
    """A log whose tabs an editor turned into spaces still reads, nothing is skipped."""
    text = log(M, (1, "LOG:  duration: 1 ms  statement: SELECT a\n        FROM t"))
    (query,), reasons = _read(text)
    assert query.sql == "SELECT a\n        FROM t"
    assert reasons == {}


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("$1 = '5'", ("5",)),
        ("$1 = 'it''s', $2 = NULL, $3 = ''", ("it's", None, "")),
        ("$2 = 'b', $1 = 'a'", ("a", "b")),
        ("nonsense", ()),
    ],
)
def test_parse_parameters(text: str, values: tuple[str | None, ...]) -> None:
    assert parse_parameters(text) == values


def test_parameters_attach_to_execute() -> None:
    text = log(
        M,
        (1, "LOG:  duration: 0.1 ms  execute S_1: SELECT $1, $2"),
        (1, "DETAIL:  parameters: $1 = 'multi\n\tline', $2 = NULL"),
    )
    (query,), _ = _read(text)
    assert query.parameters == ("multi\nline", None)


def test_log_reader_never_raises_on_arbitrary_lines() -> None:
    rng = random.Random(0)
    pieces = [
        M.format(1),
        T.format(2),
        "LOG:  ",
        "ERROR:  ",
        "DETAIL:  parameters: $1 = '",
        "STATEMENT:  ",
        "duration: 1.5 ms",
        "  statement: ",
        "execute x: ",
        "SELECT 1",
        "\t",
        "\n",
        "\ufffd",
    ]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(30)))
        _read(text)


def test_reader_streams() -> None:
    """The first query comes out before the input is read to the end."""
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield M.format(i % 7) + f"LOG:  duration: 1 ms  statement: SELECT {i}\n"

    reader = PgLogReader(lines())
    first = next(iter(reader))
    assert first.sql == "SELECT 0"
    assert consumed <= DETECT_LINES + 1  # the first lines are read to detect the format


def test_reader_keeps_no_state_for_finished_sessions() -> None:
    text = "".join(
        log(T, (pid, f"LOG:  statement: SELECT {pid}"), (pid, "LOG:  duration: 1 ms"))
        for pid in range(500)
    )
    reader = PgLogReader(text.splitlines())
    assert len(list(reader)) == 500
    assert reader._assembler is not None
    assert reader._assembler.sessions == {}


def test_read_pg_log_from_path_with_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pg.log"
    prefix = M.format(1).encode()
    path.write_bytes(
        prefix
        + b"LOG:  duration: 1 ms  statement: SELECT '\xff\xfe'\n"
        + prefix
        + b"LOG:  duration: 2 ms  statement: SELECT 2\n"
    )
    queries = list(read_pg_log(path))
    assert [q.sql for q in queries] == ["SELECT '\ufffd\ufffd'", "SELECT 2"]
    assert queries[0].source == str(path)


def test_read_input_gzip_log(tmp_path: Path) -> None:
    path = tmp_path / "pg.log.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write(M.format(1) + "LOG:  duration: 1 ms  statement: SELECT 1\n")
    queries, stats = read_input(str(path))
    assert [q.sql for q in queries] == ["SELECT 1"]
    assert stats.lines_read == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (M.format(1) + "LOG:  duration: 1 ms  statement: SELECT 1\n", [("SELECT 1", 1.0)]),
        ("\n" + T.format(1) + "LOG:  statement: SELECT 1\n", [("SELECT 1", None)]),
        ("-- a .sql file\nselect 1;\nselect 2;\n", [("select 1", None), ("select 2", None)]),
        ("", []),
    ],
)
def test_read_input_detects_format(
    tmp_path: Path, content: str, expected: list[tuple[str, float | None]]
) -> None:
    path = tmp_path / "input.txt"
    path.write_text(content, encoding="utf-8")
    queries, _ = read_input(str(path))
    assert [(q.sql, q.duration_ms) for q in queries] == expected


@pytest.mark.parametrize(
    ("head", "is_log"),
    [
        ([M.format(1) + "LOG:  statement: SELECT 1"], True),
        (["", "garbage", T.format(1) + "LOG:  duration: 1 ms"], True),
        (["select 1;", "select 2;"], False),
        ([], False),
    ],
)
def test_sniff(head: list[str], is_log: bool) -> None:
    assert sniff(head) is is_log


@pytest.mark.parametrize(
    "first_line",
    [
        "2026-11-21 23:45:13 [INFO] worker started",
        '{"level":"info","msg":"worker started"}',
        "Feb 11 13:15:39 test-pc nginx[10808]: GET / 200",
    ],
    ids=["app-log", "json-app-log", "syslog-other-program"],
)
def test_unsupported_log_is_input_error(tmp_path: Path, first_line: str) -> None:
    """Read as SQL, these would become a few huge nonsense statements."""
    path = tmp_path / "other.log"
    path.write_text(first_line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="a log format explainer does not read yet"):
        read_input(str(path))


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^cannot read .*queries\.sql: no such file$"):
        read_input(str(tmp_path / "queries.sql"))


def test_directory_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_input(str(tmp_path))


def test_bad_gzip_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "pg.log.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(InputError, match="not a valid gzip file"):
        read_input(str(path))


# -- real logs from the shared corpus ---------------------------------------------------


def test_corpus_log_min_duration_statement() -> None:
    # Counted with grep over the file: 170 lines match 'LOG:  duration: [0-9.]* ms  statement: '
    # and 45 match 'LOG:  duration: [0-9.]* ms  execute ' (the 45 'bind' and 32 'parse' lines
    # are steps of those executions) -> 215 queries, each with its duration. One INSERT
    # failed (ERROR + DETAIL + STATEMENT, no duration): counted as skipped, not a query.
    # 38 of the executes are followed by 'DETAIL:  parameters:' (awk over header lines).
    queries, stats = read_input(str(LMDS0_LOG))
    assert stats.queries == len(queries) == 215
    assert stats.lines_read == 686
    assert stats.skip_reasons == {"statement failed (ERROR)": 1}
    assert all(q.duration_ms is not None for q in queries)
    assert sum(1 for q in queries if q.parameters) == 38
    first = queries[0]
    assert (first.sql, first.duration_ms, first.line, first.session) == (
        "select version()",
        0.549,
        6,
        "10408",
    )
    assert (first.user, first.database) == ("postgres", "postgres")


def test_corpus_log_statement_all_log_duration() -> None:
    # Counted with grep: 35 lines match 'LOG:  statement: ' and 32 match 'LOG:  execute ',
    # and each is followed (after its DETAIL, if any) by its bare 'LOG:  duration: X ms'
    # line -> 67 queries, all timed. The other 123 - 67 = 56 bare durations are parse
    # and bind steps. 31 executes carry 'DETAIL:  parameters:'.
    queries, stats = read_input(str(LOG_STATEMENT_LOG))
    assert stats.queries == len(queries) == 67
    assert stats.lines_read == 300
    assert stats.skipped == 0
    assert all(q.duration_ms is not None for q in queries)
    assert sum(1 for q in queries if q.parameters) == 31
    last = queries[-1]
    assert (last.sql, last.duration_ms, last.session) == ("select pg_reload_conf()", 0.455, "12606")
    assert (last.user, last.database) == ("postgres", "postgres")
