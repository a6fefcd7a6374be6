"""ORM pattern rules (explainer.orm.patterns): synthetic workloads with numbers checked by
hand, the look-alikes each rule must leave alone, and a live run of
``tests/fixtures/orm_patterns/run.py`` read from both its logs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from explainer.capture import read_input
from explainer.capture.model import CapturedQuery
from explainer.db.server import ThrowawayServer
from explainer.orm.models import MappedClass, ModelMap
from explainer.orm.patterns import OrmFinding, detect_patterns
from explainer.workload import WorkloadBuilder

SCRIPTS = Path(__file__).resolve().parent / "fixtures" / "orm_patterns"
WIDTHS = {"docs": {"id": 4.0, "owner_id": 4.0, "title": 8.0, "body": 1540.0}}
DOC_ROW = "SELECT docs.id, docs.owner_id, docs.title, docs.body FROM docs"


def at(ms: int) -> str:
    return f"2026-01-01 10:00:{ms // 1000:02d}.{ms % 1000:03d}"


def q(
    sql: str, *params: str, tx: str | None = "s:1", ms: int | None = None, session: str = "s"
) -> CapturedQuery:
    stamp = at(ms) if ms is not None else None
    return CapturedQuery(sql, session=session, transaction=tx, parameters=params, timestamp=stamp)


def run(
    queries: list[CapturedQuery], widths: dict[str, dict[str, float]] | None = None,
    models: ModelMap | None = None,
) -> list[OrmFinding]:  # fmt: skip
    builder = WorkloadBuilder(keep_order=True)
    builder.add_all(queries)
    return detect_patterns(builder.build(), models=models, column_widths=widths)


def rules(
    queries: list[CapturedQuery], widths: dict[str, dict[str, float]] | None = None
) -> set[str]:
    return {f.rule for f in run(queries, widths)}


def only(findings: list[OrmFinding], rule: str) -> OrmFinding:
    (finding,) = [f for f in findings if f.rule == rule]
    return finding


# -- one table per rule: just over the threshold, just under, and the look-alikes --------


def in_list(n: int) -> CapturedQuery:
    marks = ", ".join(f"${i}" for i in range(1, n + 1))
    return q(f"SELECT docs.id FROM docs WHERE docs.id IN ({marks})", *map(str, range(n)))


COUNT_WRAPPED = (
    "SELECT count(*) AS count_1 FROM (SELECT docs.id AS docs_id, docs.title AS docs_title "
    "FROM docs WHERE docs.owner_id = $1::INTEGER) AS anon_1"
)


@pytest.mark.parametrize(
    ("queries", "widths", "expected"),
    [
        # Query.count(): the anon_1 wrapper.
        ([q(COUNT_WRAPPED, "3")], None, {"query-count"}),
        # select(func.count()) already: nothing to say.
        ([q("SELECT count(*) AS count_1 FROM docs WHERE docs.owner_id = $1", "3")], None, set()),
        # A user's own derived table is not Query.count().
        ([q("SELECT count(*) FROM (SELECT DISTINCT owner_id FROM docs) AS t")], None, set()),
        # Every column, body 1,540 B: wide-row; at 1,023 B it is not large.
        ([q(f"{DOC_ROW} WHERE docs.owner_id = $1", "5")], WIDTHS, {"wide-row"}),
        ([q(f"{DOC_ROW} WHERE docs.owner_id = $1", "5")],
         {"docs": {**WIDTHS["docs"], "body": 1023.0}}, set()),
        # Not every column: the body was asked for by name.
        ([q("SELECT docs.id, docs.body FROM docs WHERE docs.owner_id = $1", "5")], WIDTHS, set()),
        # No widths at all: the rules that need them stay quiet.
        ([q(f"{DOC_ROW} WHERE docs.owner_id = $1 LIMIT $2", "5", "1")], None, set()),
        # LIMIT 1 (a bound value), no ORDER BY: also exists-instead-of-first...
        ([q(f"{DOC_ROW} WHERE docs.owner_id = $1 LIMIT $2", "5", "1")], WIDTHS,
         {"wide-row", "exists-instead-of-first"}),
        # ...but not LIMIT 2, an ORDER BY (the first row by an order is wanted), or a
        # primary-key lookup.
        ([q(f"{DOC_ROW} WHERE docs.owner_id = $1 LIMIT 2", "5")], WIDTHS, {"wide-row"}),
        ([q(f"{DOC_ROW} WHERE docs.owner_id = $1 ORDER BY docs.id LIMIT 1", "5")], WIDTHS,
         {"wide-row"}),
        ([q(f"{DOC_ROW} WHERE docs.id = $1 LIMIT 1", "5")], WIDTHS, {"wide-row"}),
        # OFFSET: 1,000 is large, 999 not; literal or bound.
        ([q("SELECT docs.id FROM docs ORDER BY docs.id LIMIT 50 OFFSET 1000")], None,
         {"offset-pagination"}),
        ([q("SELECT docs.id FROM docs ORDER BY docs.id LIMIT 50 OFFSET 999")], None, set()),
        ([q("SELECT docs.id FROM docs ORDER BY docs.id LIMIT $1 OFFSET $2", "50", "1000")], None,
         {"offset-pagination"}),
        # IN lists: 1,000 items flagged, 999 (and selectinload's 500) not; literals too.
        ([in_list(1000)], None, {"large-in-list"}),
        ([in_list(999)], None, set()),
        ([in_list(500)], None, set()),
        ([q(f"SELECT docs.id FROM docs WHERE docs.id IN ({', '.join(map(str, range(1000)))})")],
         None, {"large-in-list"}),
        # SQLAlchemy's catalog checks are never anything.
        ([q("SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class "
            "WHERE pg_catalog.pg_class.relname = $1", "docs") for _ in range(5)], WIDTHS, set()),
    ],
)  # fmt: skip
def test_shape_rules(
    queries: list[CapturedQuery], widths: dict[str, dict[str, float]] | None, expected: set[str]
) -> None:
    assert rules(queries, widths) == expected


INSERT_TAG = "INSERT INTO tags (id, doc_id, name) VALUES ($1, $2, $3)"
UPDATE_TAG = "UPDATE tags SET name = $1 WHERE tags.id = $2"
OWNER_BY_ID = "SELECT owners.id, owners.name FROM owners WHERE owners.id = $1"


def inserts(
    n: int, step_ms: float, sql: str = INSERT_TAG, took_ms: float | None = None
) -> list[CapturedQuery]:
    """``n`` single-row INSERTs logged ``step_ms`` apart, each having taken ``took_ms``."""
    found = [q(sql, str(i), "1", f"t{i}", ms=int(i * step_ms)) for i in range(n)]
    for query in found:
        query.duration_ms = took_ms
    return found


@pytest.mark.parametrize(
    ("queries", "expected"),
    [
        # 10 rows, 1 ms apart: a round trip each.
        (inserts(10, 1), {"row-at-a-time-writes"}),
        (inserts(9, 1), set()),  # under the threshold
        # An echo log's executemany: every row logged by one record, at one time.
        (inserts(10, 0), set()),
        # psycopg 3's pipelined executemany in a server log: 30 rows within 2 ms.
        (inserts(30, 0.07), set()),
        # The same on a loaded server: 5 ms apart, but each took 5 ms: no wait between.
        (inserts(30, 5, took_ms=5.0), set()),
        # A loop: 5 ms apart, each took 0.1 ms: the rest is round trips.
        (inserts(30, 5, took_ms=0.1), {"row-at-a-time-writes"}),
        # No times: a loop cannot be told from a batch.
        ([q(INSERT_TAG, str(i), "1", "t") for i in range(10)], set()),
        # insertmanyvalues: multi-row INSERTs are the fix, not the problem.
        ([q("INSERT INTO tags (doc_id, name) VALUES ($1, $2), ($3, $4) RETURNING tags.id",
            str(i), "a", str(i), "b", ms=i) for i in range(10)], set()),
        # UPDATE by primary key, one per object.
        ([q(UPDATE_TAG, f"n{i}", str(i), ms=2 * i) for i in range(12)], {"row-at-a-time-writes"}),
        # 10 rows split over two transactions: 5 in each.
        ([q(INSERT_TAG, str(i), "1", "t", tx=f"s:{i % 2}", ms=i) for i in range(10)], set()),
        # The same query, same value, 3 times in one transaction; 2 is not enough; in
        # three transactions it is no repeat.
        ([q(OWNER_BY_ID, "7") for _ in range(3)], {"repeated-query"}),
        ([q(OWNER_BY_ID, "7") for _ in range(2)], set()),
        ([q(OWNER_BY_ID, "7", tx=f"s:{i}") for i in range(3)], set()),
        ([q(OWNER_BY_ID, str(i)) for i in range(3)], set()),  # different values
        # Cursor FETCH loops, sequences and catalog checks repeat by nature.
        ([q('FETCH FORWARD 2 FROM "c_1"') for _ in range(5)], set()),
        ([q("SELECT nextval('tags_id_seq')") for _ in range(5)], set()),
        ([q("select pg_catalog.version()") for _ in range(5)], set()),
    ],
)  # fmt: skip
def test_trace_rules(queries: list[CapturedQuery], expected: set[str]) -> None:
    assert rules(queries) == expected


# -- numbers and rewrites, checked by hand ------------------------------------------------


def test_row_at_a_time_numbers_and_rewrite() -> None:
    # Two transactions: 12 rows 1 ms apart (11 ms), then 10 rows 2 ms apart (18 ms).
    queries = [q(INSERT_TAG, str(i), "1", "t", ms=i) for i in range(12)]
    queries += [q(INSERT_TAG, str(100 + i), "1", "t", tx="s:2", ms=100 + 2 * i) for i in range(10)]
    finding = only(run(queries), "row-at-a-time-writes")
    assert (finding.executions, finding.occurrences) == (22, 2)
    assert finding.numbers == {"statements": 22, "transactions": 2, "max_in_one": 12, "span_ms": 29}
    assert (finding.model_class, finding.named_from) == ("Tag", "sql")
    assert finding.rewrite.after.startswith("session.execute(insert(Tag), rows)")
    assert '"doc_id": ...' in finding.rewrite.after
    assert (finding.rewrite.round_trips_before, finding.rewrite.round_trips_after) == (12, 1)
    assert finding.rewrite.sql_after[0].startswith(
        "INSERT INTO tags (id, doc_id, name) VALUES ($1, $2, $3), ($4, $5, $6), ..."
    )


def test_repeated_primary_key_lookup_becomes_session_get() -> None:
    queries = [q(OWNER_BY_ID, "7") for _ in range(4)] + [q(OWNER_BY_ID, "7", tx="s:2")] * 3
    finding = only(run(queries), "repeated-query")
    # 4 in one transaction, 3 in the other: 7 executions, 5 of them redundant.
    assert finding.numbers == {"executions": 7, "redundant": 5, "max_in_one": 4}
    assert finding.rewrite.after == "session.get(Owner, id)"


def test_offset_walk_reaches_the_threshold() -> None:
    # A session walks pages of 50 from OFFSET 0; only five samples keep their values
    # (offsets 0..200), so the reach is estimated from the walk: (pages - 1) x 50.
    sql = "SELECT docs.id, docs.title FROM docs ORDER BY docs.id LIMIT $1 OFFSET $2"

    def walk(pages: int) -> list[CapturedQuery]:
        return [q(sql, "50", str(50 * p)) for p in range(pages)]

    assert rules(walk(20)) == set()  # reaches OFFSET 950
    finding = only(run(walk(21)), "offset-pagination")  # reaches OFFSET 1000
    assert finding.numbers == {
        "calls": 21, "max_offset_seen": 200, "page_size": 50, "pages_walked": 21,
        "offset_reached_estimate": 1000,
    }  # fmt: skip
    assert finding.rewrite.before == (
        "select(Doc.id, Doc.title).order_by(Doc.id).limit(50).offset(offset)"
    )
    assert finding.rewrite.after == (
        "select(Doc.id, Doc.title).where(Doc.id > last_id).order_by(Doc.id).limit(50)"
    )
    # The OFFSET's $2 is free again: the last key seen takes it.
    assert finding.rewrite.sql_after == (
        "SELECT docs.id, docs.title FROM docs WHERE docs.id > $2 ORDER BY docs.id LIMIT $1",
    )
    assert finding.rewrite.index is None  # the primary key's index serves id


def test_offset_on_another_sort_key_needs_an_index() -> None:
    sql = "SELECT docs.id FROM docs ORDER BY docs.created_at DESC LIMIT 20 OFFSET 5000"
    finding = only(run([q(sql)]), "offset-pagination")
    assert finding.rewrite.after == (
        "select(Doc.id).where(tuple_(Doc.created_at, Doc.id) < tuple_(last_created_at, last_id))"
        ".order_by(Doc.created_at.desc(), Doc.id.desc()).limit(20)"
    )
    index = finding.rewrite.index
    assert index is not None
    assert [(k.text, k.descending) for k in index.keys] == [("created_at", True), ("id", True)]


def test_in_list_numbers_and_any_rewrite() -> None:
    ids = ", ".join(f"${i}::INTEGER" for i in range(1, 2001))
    sql = f"SELECT docs.id FROM docs WHERE docs.id IN ({ids})"
    finding = only(run([q(sql, *map(str, range(2000)))]), "large-in-list")
    assert finding.numbers == {"calls": 1, "items": 2000}
    assert finding.rewrite.sql_after == ("SELECT docs.id FROM docs WHERE docs.id = ANY($1::INT[])",)
    assert 'any_(bindparam("ids", type_=ARRAY(Integer)))' in finding.rewrite.after


def test_models_name_the_class_and_attribute() -> None:
    document = MappedClass(
        "Document", "app.models", "app/models.py", 10, "docs", None,
        {"id": "id", "owner_id": "owner_id", "title": "title", "body": "content"},
        attribute_lines={"content": 15},
        attribute_sources={"content": "content: Mapped[str] = mapped_column(\"body\", Text)"},
    )  # fmt: skip
    models = ModelMap({"docs": document}, "models")
    findings = run([q(f"{DOC_ROW} WHERE docs.owner_id = $1", "5")], WIDTHS, models)
    finding = only(findings, "wide-row")
    assert finding.named_from == "models"
    assert finding.rewrite.after == (
        "select(Document).options(defer(Document.content)).where(Document.owner_id == owner_id)"
    )
    assert finding.rewrite.sql_after == (
        "SELECT docs.id, docs.owner_id, docs.title FROM docs WHERE docs.owner_id = $1",
    )
    assert finding.defined_at == "app/models.py:15"
    declared = finding.alternatives[1].code
    assert declared == 'content: Mapped[str] = mapped_column("body", Text, deferred=True)'


def test_query_count_rewrite() -> None:
    finding = only(run([q(COUNT_WRAPPED, "3")]), "query-count")
    assert finding.rewrite.before == "session.query(Doc).filter(Doc.owner_id == owner_id).count()"
    assert finding.rewrite.after == (
        "session.scalar(select(func.count()).select_from(Doc).where(Doc.owner_id == owner_id))"
    )
    assert finding.rewrite.sql_after == (
        "SELECT count(*) AS count_1 FROM docs WHERE docs.owner_id = $1::INT",
    )
    assert "select(exists().where(Doc.owner_id == owner_id))" in finding.alternatives[0].code


# -- live: the script against a logging server --------------------------------------------

LOGGING = {
    "log_min_duration_statement": "0",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_timezone": "UTC",
}
HABITS = ["count", "first", "wide", "offset", "in_list", "row_inserts", "repeat"]
FIXED = ["count_fixed", "wide_fixed", "any", "insertmanyvalues", "get"]


@pytest.fixture(scope="module")
def logging_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer(settings=LOGGING) as server:
        yield server


class Run:
    """One run of run.py: statement counts, both logs' queries, and the columns' widths."""

    def __init__(self, server: ThrowawayServer, tmp: Path, *modes: str) -> None:
        self.database = f"pat_{uuid.uuid4().hex[:8]}"
        dsn = server.create_database(self.database)
        echo = tmp / f"{self.database}.log"
        done = subprocess.run(
            [sys.executable, "run.py", dsn, str(echo), *modes],
            cwd=SCRIPTS, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        self.counts: dict[str, int] = json.loads(done.stdout)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT tablename, attname, avg_width FROM pg_stats WHERE schemaname = 'public'"
            ).fetchall()
        self.widths: dict[str, dict[str, float]] = {}
        for table, column, width in rows:
            self.widths.setdefault(table, {})[column] = float(width)
        server_queries = [
            query for query in read_input(str(server.log_path))[0]
            if query.database == self.database
        ]  # fmt: skip
        self.logs = {"echo": read_input(str(echo))[0], "server": server_queries}

    def findings(self) -> dict[str, dict[str, OrmFinding]]:
        found: dict[str, dict[str, OrmFinding]] = {}
        for log, queries in self.logs.items():
            findings = run(queries, self.widths)
            found[log] = {f"{f.rule}:{f.model_class}": f for f in findings}
        return found


def test_live_habits_are_found_in_both_logs(
    logging_server: ThrowawayServer, tmp_path: Path
) -> None:
    habits = Run(logging_server, tmp_path, *HABITS)
    # pg_stats sees the ~1.5 kB inline body (64 hex digits x 24).
    assert habits.widths["docs"]["body"] >= 1500
    assert habits.counts["offset"] == 31 and habits.counts["row_inserts"] == 20
    for log, findings in habits.findings().items():
        assert set(findings) == {
            "query-count:Doc", "exists-instead-of-first:Doc", "wide-row:Doc",
            "offset-pagination:Doc", "large-in-list:Doc", "row-at-a-time-writes:Tag",
            "repeated-query:Owner",
        }, log  # fmt: skip
        assert findings["row-at-a-time-writes:Tag"].executions == 20, log
        assert findings["repeated-query:Owner"].numbers["max_in_one"] == 3, log
        assert findings["large-in-list:Doc"].numbers["items"] == 2000, log
        assert findings["offset-pagination:Doc"].numbers["pages_walked"] == 31, log


def test_live_fixed_forms_and_batches_are_quiet(
    logging_server: ThrowawayServer, tmp_path: Path
) -> None:
    fixed = Run(logging_server, tmp_path, *FIXED)
    assert fixed.counts["get"] == 1  # the identity map answered the second and third get
    assert fixed.counts["insertmanyvalues"] == 1
    # The server log also holds the script's setup: 3,020 rows by psycopg 3's pipelined
    # executemany in one transaction, which must read as batches.
    assert fixed.findings() == {"echo": {}, "server": {}}
    many = Run(logging_server, tmp_path, "executemany")
    assert many.findings() == {"echo": {}, "server": {}}
