"""N+1 bursts found from logs alone, and the loader-option rewrite that removes them.

The live tests run ``tests/fixtures/orm_scripts/run.py`` (its own models, lazy
relationships) against a throwaway server that logs every statement, with SQLAlchemy's
engine log written to a file, and read both logs with explainer's readers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from explainer.capture import read_input
from explainer.capture.model import CapturedQuery
from explainer.db.server import ThrowawayServer
from explainer.orm.loaders import LoaderStep, rewrite
from explainer.orm.models import MappedClass, ModelMap, RelationshipInfo, load_models
from explainer.orm.nplus1 import NPlusOne, class_name, detect, lookup_of
from explainer.workload import build_workload

SCRIPTS = Path(__file__).resolve().parent / "fixtures" / "orm_scripts"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs" / "generated"
LOGGING = {
    "log_min_duration_statement": "0",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_timezone": "UTC",
}


# -- lookups from SQL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # SQLAlchemy 2.0 lazy loads: collection (value on the left) and many-to-one.
        (
            "SELECT books.id AS books_id, books.title AS books_title FROM books "
            "WHERE $1::INTEGER = books.author_id",
            ("books", ("author_id",)),
        ),
        (
            "SELECT authors.id, authors.name FROM authors WHERE authors.id = $1",
            ("authors", ("id",)),
        ),
        # psycopg2 inlines the value.
        ("SELECT books.id FROM books WHERE 1 = books.author_id", ("books", ("author_id",))),
        ("SELECT s.t.a FROM s.t WHERE s.t.k = $1 AND s.t.j = $2", ("s.t", ("j", "k"))),
        ("SELECT id FROM books WHERE author_id = $1 ORDER BY id", ("books", ("author_id",))),
        # Not lookups.
        ("SELECT count(*) FROM books WHERE books.author_id = $1", None),
        ("SELECT b.id FROM books b JOIN authors a ON a.id = b.author_id WHERE a.id = $1", None),
        ("SELECT id FROM books WHERE author_id IN ($1, $2)", None),
        ("SELECT id FROM books WHERE author_id > $1", None),
        ("SELECT relname FROM pg_catalog.pg_class WHERE relname = $1", None),
        ("SELECT typname FROM pg_type WHERE oid = $1", None),
        ("INSERT INTO books (id, title) VALUES ($1, $2)", None),
        ('FETCH FORWARD 2 FROM "c_1"', None),
        ("select pg_catalog.version()", None),
        ("show standard_conforming_strings", None),
    ],
)
def test_lookup_of(sql: str, expected: tuple[str, tuple[str, ...]] | None) -> None:
    found = lookup_of(sql)
    assert (None if found is None else (found.table, found.key_columns)) == expected


@pytest.mark.parametrize(
    ("table", "name"),
    [("authors", "Author"), ("order_items", "OrderItem"), ("categories", "Category"),
     ("addresses", "Address"), ("sales.boxes", "Box"), ("news", "New"), ("glass", "Glass")],
)  # fmt: skip
def test_class_names_from_tables(table: str, name: str) -> None:
    assert class_name(table) == name


# -- detection on synthetic traces --------------------------------------------------------

AUTHORS = "SELECT authors.id, authors.name FROM authors"
BOOKS_BY_AUTHOR = "SELECT books.id, books.title FROM books WHERE $1 = books.author_id"


def q(sql: str, *params: str, tx: str | None = "s:1", at: str | None = None) -> CapturedQuery:
    return CapturedQuery(sql, session="s", transaction=tx, parameters=params, timestamp=at)


def books_loop(
    n: int, tx: str | None = "s:1", values: list[str] | None = None
) -> list[CapturedQuery]:
    values = values if values is not None else [str(i) for i in range(1, n + 1)]
    return [q(AUTHORS, tx=tx), *(q(BOOKS_BY_AUTHOR, v, tx=tx) for v in values)]


def found(
    queries: list[CapturedQuery], min_count: int = 5, max_gap_ms: int = 1000
) -> list[tuple[str, int, list[int]]]:
    workload = build_workload(queries, keep_order=True)
    return [
        (f.relationship_name, f.occurrences, [b.executions for b in f.bursts])
        for f in detect(workload, min_count=min_count, max_gap_ms=max_gap_ms)
    ]


@pytest.mark.parametrize(
    ("queries", "expected"),
    [
        (books_loop(5), [("Author.books", 1, [5])]),
        (books_loop(4), []),  # under the threshold
        (books_loop(8, values=["1", "2", "1", "2", "1", "2", "1", "2"]), []),  # same values
        # Two loops in one transaction: two occurrences, split at the re-read of authors.
        (books_loop(5) + books_loop(6), [("Author.books", 2, [5, 6])]),
        # In two transactions: two occurrences too.
        (books_loop(5) + books_loop(5, tx="s:2"), [("Author.books", 2, [5, 5])]),
        # A transaction boundary in the middle of a run: neither half is a burst.
        (books_loop(3) + [q(BOOKS_BY_AUTHOR, str(i), tx="s:2") for i in (4, 5, 6)], []),
        # No source query: lookups alone are not an N+1.
        ([q(BOOKS_BY_AUTHOR, str(i)) for i in range(10)], []),
    ],
)
def test_bursts(queries: list[CapturedQuery], expected: list[tuple[str, int, list[int]]]) -> None:
    assert found(queries) == expected


def test_request_windows_outside_transactions() -> None:
    def at(ms: int) -> str:
        return f"2026-01-01 10:00:{ms // 1000:02d}.{ms % 1000:03d}"

    close = [q(AUTHORS, tx=None, at=at(0))]
    close += [q(BOOKS_BY_AUTHOR, str(i), tx=None, at=at(10 * i)) for i in range(1, 6)]
    assert found(close) == [("Author.books", 1, [5])]
    # A 5 s pause after the third lookup: a new request window, which has no source.
    apart = close[:4] + [q(BOOKS_BY_AUTHOR, str(i), tx=None, at=at(5000 + i)) for i in (4, 5)]
    assert found(apart) == []
    assert found(apart, max_gap_ms=10_000) == [("Author.books", 1, [5])]
    assert found(books_loop(3), min_count=3) == [("Author.books", 1, [3])]


# -- naming with models -------------------------------------------------------------------


def rel(attribute: str, target: str, table: str, direction: str, local: str, remote: str,
        uselist: bool) -> RelationshipInfo:  # fmt: skip
    return RelationshipInfo(
        attribute, target, table, direction,  # type: ignore[arg-type]
        uselist, (local,), (remote,), None, "select",
    )  # fmt: skip


def mapped(name: str, table: str, *relationships: RelationshipInfo) -> MappedClass:
    return MappedClass(name, "shop", "shop.py", 1, table, None, {}, list(relationships))


SHOP = ModelMap(
    {
        "authors": mapped("Writer", "authors",
                          rel("works", "Volume", "books", "ONETOMANY", "id", "author_id", True)),
        "books": mapped("Volume", "books",
                        rel("writer", "Writer", "authors", "MANYTOONE", "author_id", "id", False)),
    },
    "models",
)  # fmt: skip


def test_models_name_the_relationship_from_its_columns() -> None:
    # Class and attribute names the SQL could not guess: only the models give them.
    books = [
        q("SELECT books.id, books.author_id FROM books", tx="s:2"),
        *(q("SELECT authors.id FROM authors WHERE authors.id = $1", str(i), tx="s:2")
          for i in range(1, 6)),
    ]  # fmt: skip
    workload = build_workload(books_loop(5) + books, keep_order=True)
    findings = {f.relationship_name: f for f in detect(workload, SHOP)}
    assert set(findings) == {"Writer.works", "Volume.writer"}
    works, writer = findings["Writer.works"], findings["Volume.writer"]
    assert (works.kind, works.strategy, works.named_from) == (
        "collection",
        "selectinload",
        "models",
    )
    assert (writer.kind, writer.strategy) == ("many-to-one", "joinedload")
    assert writer.relationship is SHOP.classes["books"].relationships[0]
    assert writer.rewrite is not None
    assert (
        writer.rewrite.after == "session.scalars(select(Volume).options(joinedload(Volume.writer)))"
    )
    assert writer.rewrite.sql_after == (
        "SELECT books.id, books.author_id, authors_1.id FROM books "
        "LEFT OUTER JOIN authors AS authors_1 ON authors_1.id = books.author_id",
    )
    assert (writer.rewrite.queries_before, writer.rewrite.queries_after) == (6, 1)
    # Without models: names from the tables, and it says so.
    plain = {f.relationship_name: f for f in detect(workload)}
    assert set(plain) == {"Author.books", "Book.author"}
    assert {f.named_from for f in plain.values()} == {"sql"}


def test_many_to_one_after_a_joined_collection_uses_selectinload() -> None:
    source = (
        "SELECT books.id, books.author_id, reviews_1.id FROM books "
        "LEFT OUTER JOIN reviews AS reviews_1 ON books.id = reviews_1.book_id"
    )
    queries = [q(source), *(q("SELECT authors.id FROM authors WHERE authors.id = $1", str(i))
                            for i in range(1, 6))]  # fmt: skip
    (finding,) = detect(build_workload(queries, keep_order=True))
    assert (finding.relationship_name, finding.strategy) == ("Book.author", "selectinload")


DECLARED = 'books: Mapped[list["Book"]] = relationship(back_populates="author")'


def test_rewrite_code_and_alternatives() -> None:
    step = LoaderStep("Author", "books", "selectinload", "collection", "authors", "books",
                      "Book", ("id",), ("author_id",))  # fmt: skip
    owner = MappedClass(
        "Author", "shop", "shop.py", 10, "authors", None, {}, [],
        attribute_lines={"books": 14},
        attribute_sources={"books": DECLARED},
    )  # fmt: skip
    models = ModelMap({"authors": owner}, "models")
    result = rewrite(AUTHORS, [(step,)], queries_before=11, models=models,
                     repeated_sql={(step,): BOOKS_BY_AUTHOR})  # fmt: skip
    assert result.imports == (
        "from sqlalchemy import select",
        "from sqlalchemy.orm import selectinload",
    )
    assert result.before == "session.scalars(select(Author))"
    assert result.after == "session.scalars(select(Author).options(selectinload(Author.books)))"
    assert result.sql_after == (
        AUTHORS, "SELECT books.id, books.title FROM books WHERE books.author_id IN ($1, $2, ...)",
    )  # fmt: skip
    assert (result.queries_before, result.queries_after) == (11, 2)
    assert result.defined_at == "shop.py:14"
    level, guard = result.alternatives
    assert level.code == (
        'books: Mapped[list["Book"]] = relationship(back_populates="author", lazy="selectin")'
    )
    assert "raiseload('*')" in guard.code


# -- the corpus: real SQLAlchemy and server logs of one ORM workload -----------------------


@pytest.mark.parametrize(
    ("name", "occurrences"),
    [
        ("sqlalchemy2.0_echo_psycopg3.log", 1),
        ("sqlalchemy2.0_echo_psycopg2.log", 1),
        ("sqlalchemy2.0_echo_asyncpg.log", 1),
        ("sqlalchemy1.4_echo_psycopg2.log", 1),
        # Same workload through psycopg2 and psycopg 3 and SQLAlchemy 1.4 (other labels).
        ("pg15_stderr_lmds0_prefix-m-p-q-u-d.log", 3),
        ("pg15_csvlog_lmds0.csv", 3),
        ("pg15_jsonlog_lmds0.jsonl", 3),
    ],
)
def test_corpus_logs(name: str, occurrences: int) -> None:
    # Each run of the corpus workload loads the books of 5 authors one by one; its
    # 3 lazy many-to-one loads of publishers stay under the threshold.
    queries, _ = read_input(str(CORPUS / name))
    findings = detect(build_workload(queries, keep_order=True))
    assert {f.relationship_name for f in findings} == {"Author.books"}
    assert sum(f.occurrences for f in findings) == occurrences
    assert all(b.executions == 5 for f in findings for b in f.bursts)


# -- live: scripts against a logging server ----------------------------------------------


@pytest.fixture(scope="module")
def logging_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer(settings=LOGGING) as server:
        yield server


@pytest.fixture(scope="module")
def bookshop() -> ModelMap:
    return load_models(str(SCRIPTS / "bookshop.py"))


class Run:
    """One run of ``run.py``: the statements it counted, and both logs of it."""

    def __init__(self, server: ThrowawayServer, tmp: Path, mode: str, *extra: str) -> None:
        self.database = f"orm_{mode}_{uuid.uuid4().hex[:8]}"
        dsn = server.create_database(self.database)
        self.echo_log = tmp / f"{mode}.log"
        done = subprocess.run(
            [sys.executable, "run.py", dsn, mode, str(self.echo_log), *extra],
            cwd=SCRIPTS, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        self.counts: dict[str, int] = json.loads(done.stdout)
        self.server_queries = [
            query
            for query in read_input(str(server.log_path))[0]
            if query.database == self.database
        ]

    def findings(self, models: ModelMap | None) -> dict[str, dict[str, NPlusOne]]:
        """Per log ("echo", "server"): the findings by relationship name."""
        echo = read_input(str(self.echo_log))[0]
        logs = {"echo": echo, "server": self.server_queries}
        return {
            log: {
                f.relationship_name: f
                for f in detect(build_workload(qs, keep_order=True), models)
            }
            for log, qs in logs.items()
        }  # fmt: skip


def test_both_lazy_relationships_are_found_and_the_rewrite_fixes_them(
    logging_server: ThrowawayServer, bookshop: ModelMap, tmp_path: Path
) -> None:
    lazy = Run(logging_server, tmp_path, "lazy")
    # 1 + 6 authors, and 1 + 6 distinct authors of 18 books (the identity map).
    assert lazy.counts == {"collection": 7, "many_to_one": 7}
    for log, findings in lazy.findings(bookshop).items():
        assert set(findings) == {"Author.books", "Book.author"}, log
        books, author = findings["Author.books"], findings["Book.author"]
        assert (books.option, books.kind, books.max_count) == (
            "selectinload(Author.books)", "collection", 6,
        ), log  # fmt: skip
        assert (author.option, author.kind, author.max_count) == (
            "joinedload(Book.author)", "many-to-one", 6,
        ), log  # fmt: skip
        assert books.relationship is not None and books.relationship.attribute == "books"
        for finding, attribute in ((books, "books"), (author, "author.name")):
            assert finding.rewrite is not None
            assert finding.rewrite.queries_before == 7
            imports = "\n".join(finding.rewrite.imports)
            fixed = Run(
                logging_server, tmp_path, "rewrite", imports, finding.rewrite.after, attribute
            )
            assert fixed.counts["rewrite"] == finding.rewrite.queries_after <= 2
            assert fixed.findings(bookshop) == {"echo": {}, "server": {}}


def test_nested_bursts_chain_their_options(
    logging_server: ThrowawayServer, bookshop: ModelMap, tmp_path: Path
) -> None:
    nested = Run(logging_server, tmp_path, "nested")
    assert nested.counts == {"nested": 1 + 6 + 18}
    for log, findings in nested.findings(bookshop).items():
        assert set(findings) == {"Author.books", "Book.reviews"}, log
        reviews = findings["Book.reviews"]
        assert reviews.option == "selectinload(Author.books).selectinload(Book.reviews)"
        root = findings["Author.books"]
        assert root.nested == [reviews]
        assert root.rewrite is not None
        assert root.rewrite.after == (
            "session.scalars(select(Author).options("
            "selectinload(Author.books).selectinload(Book.reviews)))"
        )
        assert (root.rewrite.queries_before, root.rewrite.queries_after) == (25, 3)


def test_no_nplus1_when_already_eager(
    logging_server: ThrowawayServer, bookshop: ModelMap, tmp_path: Path
) -> None:
    run = Run(logging_server, tmp_path, "selectin")
    assert run.counts == {"collection": 2, "many_to_one": 1}
    assert run.findings(bookshop) == {"echo": {}, "server": {}}


def test_no_nplus1_for_executemany_inserts(
    logging_server: ThrowawayServer, bookshop: ModelMap, tmp_path: Path
) -> None:
    run = Run(logging_server, tmp_path, "executemany")
    # psycopg 3 runs one INSERT per row: 20 executions of one shape, different values,
    # in one transaction -- a burst by count, but not a lookup.
    inserts = [q for q in run.server_queries if q.sql.startswith("INSERT INTO books")]
    assert len({q.parameters for q in inserts if (q.parameters[0] or "").startswith("9")}) == 20
    assert run.findings(bookshop) == {"echo": {}, "server": {}}
    assert run.findings(None) == {"echo": {}, "server": {}}


def test_no_nplus1_for_server_side_cursor_fetches(
    logging_server: ThrowawayServer, bookshop: ModelMap, tmp_path: Path
) -> None:
    run = Run(logging_server, tmp_path, "stream")
    fetches = [q for q in run.server_queries if q.sql.upper().startswith("FETCH")]
    assert len(fetches) >= 9  # 18 books, 2 a fetch
    assert run.findings(bookshop) == {"echo": {}, "server": {}}
    assert run.findings(None) == {"echo": {}, "server": {}}
