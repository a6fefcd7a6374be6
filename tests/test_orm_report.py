"""The ORM advisor in the report: ``--models``, ``orm_findings[]`` and index code in the
models' own terms, through the ``explainer`` command as a user runs it."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import sqlalchemy
from rich.console import Console
from sqlalchemy import MetaData, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import CreateIndex

from explainer.capture import read_input
from explainer.cli import main
from explainer.pipeline import analyze_orm
from explainer.render.markdown import render_markdown
from explainer.render.terminal import render_terminal
from explainer.report import DatabaseInfo, Report
from explainer.workload import build_workload

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs" / "generated"
# SQLAlchemy 2.0's echo log of the corpus workload: the books of 5 authors loaded one by one.
ECHO_LOG = CORPUS / "sqlalchemy2.0_echo_psycopg3.log"
MODELS_DIR = Path(__file__).resolve().parent / "fixtures" / "models"
SHOP = MODELS_DIR / "shop" / "models.py"


def _line_of(path: Path, pattern: str) -> int:
    """The 1-based line of ``path`` that starts (after indentation) with ``pattern``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip().startswith(pattern):
            return number
    raise AssertionError(f"{pattern!r} not in {path}")


def _workload_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["workload", "--log", str(ECHO_LOG), "--format", "json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


# -- explainer workload: N+1 from a log alone ----------------------------------------------


def test_workload_log_alone_reports_the_nplus1_named_from_the_sql(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = _workload_json(capsys)
    assert document["models"]["source"] == "sql"
    [finding] = document["orm_findings"]
    assert finding["rule"] == "n-plus-one"
    assert finding["named_from"] == "sql"
    assert (finding["relationship"], finding["kind"], finding["strategy"]) == (
        "Author.books",
        "collection",
        "selectinload",
    )
    # 5 lazy loads after one SELECT of authors (the log's own figures).
    assert (finding["count"], finding["occurrences"]) == (5, 1)
    assert finding["source"]["sql"].startswith("SELECT authors.id")
    assert "= books.author_id" in finding["repeated"]["sql"]
    # The ids are the workload's shape ids.
    ids = {g["id"] for g in document["groups"]}
    assert {finding["source"]["query"], finding["repeated"]["query"]} <= ids
    assert finding["after"] == "session.scalars(select(Author).options(selectinload(Author.books)))"
    assert "from sqlalchemy.orm import selectinload" in finding["imports"]
    assert (finding["queries_before"], finding["queries_after"]) == (6, 2)
    assert finding["emitted_sql"][1].endswith("WHERE books.author_id IN ($1, $2, ...)")
    assert [a["title"] for a in finding["alternatives"]] == [
        "relationship-level default",
        "raiseload, so the N+1 cannot come back",
    ]
    assert finding["declared_at"] is None  # no models: nothing to point at
    # An echo log does not say which application line ran a statement.
    assert (finding["location"], finding["source_location"]) == (None, None)


def test_workload_with_models_names_the_models_relationship_and_its_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = _workload_json(capsys, "--models", str(SHOP))
    assert document["models"]["source"] == "models"
    assert document["models"]["target"] == str(SHOP)
    [finding] = document["orm_findings"]
    assert (finding["named_from"], finding["relationship"], finding["direction"]) == (
        "models",
        "Author.books",
        "ONETOMANY",
    )
    file, _, line = finding["declared_at"].rpartition(":")
    assert Path(file).resolve() == SHOP.resolve()
    assert int(line) == _line_of(SHOP, "books: Mapped[list[Book]]")
    # The relationship-level alternative is the model's own line with lazy= set.
    assert finding["alternatives"][0]["code"] == (
        'books: Mapped[list[Book]] = relationship(back_populates="author", lazy="selectin")'
    )


def test_models_with_other_names_are_the_names_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    models = tmp_path / "library.py"
    models.write_text(
        "from sqlalchemy import ForeignKey\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship\n"
        "\n"
        "class Base(DeclarativeBase):\n"
        "    pass\n"
        "\n"
        "class Writer(Base):\n"
        "    __tablename__ = 'authors'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    works: Mapped[list['Work']] = relationship(back_populates='writer')\n"
        "\n"
        "class Work(Base):\n"
        "    __tablename__ = 'books'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    author_id: Mapped[int] = mapped_column(ForeignKey('authors.id'))\n"
        "    writer: Mapped[Writer] = relationship(back_populates='works')\n"
    )
    document = _workload_json(capsys, "--models", str(models))
    [finding] = document["orm_findings"]
    assert finding["relationship"] == "Writer.works"
    assert finding["target_class"] == "Work"
    assert finding["after"] == "session.scalars(select(Writer).options(selectinload(Writer.works)))"
    assert finding["declared_at"] == f"{models}:10"


def test_workload_terminal_shows_the_rewrite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workload", "--log", str(ECHO_LOG)]) == 0
    out = capsys.readouterr().out
    assert "N+1 Author.books -> selectinload" in out
    assert "select(Author).options(selectinload(Author.books))" in " ".join(out.split())
    assert "names are guessed from the SQL" in out


def test_no_orm_section_for_a_log_without_orm_habits(capsys: pytest.CaptureFixture[str]) -> None:
    log = Path(__file__).resolve().parents[1] / "sample_queries" / "shop.log"
    assert main(["workload", "--log", str(log), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [f for f in document["orm_findings"] if f["rule"] == "n-plus-one"] == []
    assert main(["workload", "--log", str(log)]) == 0
    assert "N+1" not in capsys.readouterr().out


# -- bad --models targets: one line, exit 2, within the timeout ---------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no/such/models.py", "does not exist"),
        (str(MODELS_DIR / "broken" / "missing_dependency.py"), "not installed"),
        (str(MODELS_DIR / "broken" / "no_models.py"), "defines no mapped classes"),
        ("no_such_package_xyz.models", "cannot import"),
    ],
)
def test_bad_models_target_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], target: str, expected: str
) -> None:
    assert main(["workload", "--log", str(ECHO_LOG), "--models", target]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("explainer: error: ") and expected in line


def test_models_that_hang_stop_at_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    target = str(MODELS_DIR / "broken" / "hangs.py")
    started = time.monotonic()
    code = main(["workload", "--log", str(ECHO_LOG), "--models", target, "--models-timeout", "2"])
    elapsed = time.monotonic() - started
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "took longer than 2 s" in line
    assert elapsed < 15


# -- the renderers: Markdown and terminal show the ORM section with its code -------------


def test_markdown_and_terminal_show_the_orm_section() -> None:
    queries, _ = read_input(str(ECHO_LOG))
    report = Report(
        database=DatabaseInfo("17.0", "shop", "postgresql://app@db/shop", "none"),
        orm=analyze_orm(build_workload(queries, keep_order=True), None),
    )
    markdown = render_markdown(report)
    assert "## ORM" in markdown
    assert "### N+1: `Author.books` -> `selectinload`" in markdown
    after = "session.scalars(select(Author).options(selectinload(Author.books)))"
    assert (
        "```python\nfrom sqlalchemy import select\nfrom sqlalchemy.orm import selectinload\n"
        f"\n{after}\n```" in markdown
    )
    assert "WHERE books.author_id IN ($1, $2, ...);\n```" in markdown
    console = Console(record=True, width=200)
    render_terminal(report, console)
    shown = console.export_text()
    assert "N+1 Author.books -> selectinload" in shown and after in shown


# -- explainer analyze: index suggestions in the models' terms ----------------------------


def _shop_module() -> ModuleType:
    sys.path.insert(0, str(MODELS_DIR))
    try:
        return importlib.import_module("shop.models")
    finally:
        sys.path.remove(str(MODELS_DIR))


@pytest.fixture(scope="module")
def shop_dsn(db_dsn: str) -> Iterator[str]:
    """The shop models' tables, created from the models, with data that makes two indexes
    worth it: 40 orders per ``total``, and 100 books per author (the class already
    declares an index on ``orders.status``)."""
    module = _shop_module()
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(db_dsn)
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS audit"))
        module.Base.metadata.create_all(conn)
    engine.dispose()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (id, email, country) "
            "SELECT g, 'c' || g || '@example.com', 'DE' FROM generate_series(1, 1000) g"
        )
        conn.execute(
            "INSERT INTO orders (id, customer_id, status, placed_at, total) "
            "SELECT g, 1 + g % 1000, CASE WHEN g % 1000 = 0 THEN 'pending' ELSE 'shipped' END, "
            "now() - g * interval '1 minute', g % 5000 FROM generate_series(1, 200000) g"
        )
        conn.execute(
            "INSERT INTO authors (id, name) "
            "SELECT g, 'author ' || g FROM generate_series(1, 2000) g"
        )
        conn.execute(
            "INSERT INTO books (id, author_id, title, price) "
            "SELECT g, 1 + g % 2000, 'book ' || g, g % 100 FROM generate_series(1, 200000) g"
        )
        conn.execute("ANALYZE")
    yield db_dsn


def _compiled(index: sqlalchemy.Index) -> str:
    return str(CreateIndex(index).compile(dialect=postgresql.dialect())).strip()


def _index_from_model_code(module: ModuleType, model: dict[str, Any]) -> sqlalchemy.Index:
    """Build the index the suggested code declares, against the fixture's real class."""
    cls = getattr(module, model["class"])
    table: Table = cls.__table__
    convention = module.Base.metadata.naming_convention
    namespace: dict[str, Any] = {**vars(module)}
    exec(model["imports"], namespace)
    if model["form"] == "index=True":
        # The changed line, in a copy of the class under the same naming convention.
        class Base(DeclarativeBase):
            metadata = MetaData(naming_convention=dict(convention))

        body = [
            f"__tablename__ = {table.name!r}",
            "pk_: Mapped[int] = mapped_column('pk_', primary_key=True)",
            model["code"],
        ]
        source = f"class {model['class']}(Base):\n" + "".join(f"    {b}\n" for b in body)
        namespace["Base"] = Base
        exec(source, namespace)
        [index] = namespace[model["class"]].__table__.indexes
        return index
    exec(model["code"], namespace)
    entries = [a for a in namespace["__table_args__"] if isinstance(a, sqlalchemy.Index)]
    copy = Table(
        table.name,
        MetaData(naming_convention=dict(convention)),
        *[c._copy() for c in table.columns],
        *entries,
        schema=table.schema,
    )
    existing = {i.name for i in table.indexes}
    [index] = [i for i in copy.indexes if i.name not in existing]
    return index


def _analyze(capsys: pytest.CaptureFixture[str], dsn: str, *extra: str) -> dict[str, Any]:
    queries = [
        "SELECT id, status FROM orders WHERE total = 1234",
        "SELECT id, title FROM books WHERE author_id = 7 AND price > 90",
    ]
    args = ["analyze", "--dsn", dsn, "--format", "json", "--verify", "rollback"]
    for query in queries:
        args += ["--query", query]
    code = main([*args, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


def test_analyze_with_models_writes_each_index_in_the_models_terms(
    capsys: pytest.CaptureFixture[str], shop_dsn: str
) -> None:
    document = _analyze(capsys, shop_dsn, "--models", str(SHOP))
    assert document["models"]["source"] == "models"
    by_table = {s["table"]: s for s in document["suggestions"]}
    assert set(by_table) == {"orders", "books"}
    module = _shop_module()
    forms = {}
    for table, suggestion in by_table.items():
        model = suggestion["model"]
        assert model is not None, table
        assert Path(model["file"]).resolve() == SHOP.resolve()
        forms[table] = (model["class"], model["form"])
        # The code compiles, against the fixture's models, to the suggestion's own SQL.
        expected = suggestion["sql"].replace(" CONCURRENTLY IF NOT EXISTS", "").rstrip(";")
        assert _compiled(_index_from_model_code(module, model)) == expected
        assert model["sql"] == expected
    assert forms == {"orders": ("Order", "index=True"), "books": ("Book", "__table_args__")}
    orders = by_table["orders"]["model"]
    assert orders["line"] == _line_of(SHOP, "total: Mapped[Decimal]")
    assert orders["code"] == "total: Mapped[Decimal] = mapped_column(Numeric(12, 2), index=True)"
    books = by_table["books"]["model"]
    assert books["line"] == _line_of(SHOP, '__table_args__ = (Index("ix_books_title_lower"')
    # The class's existing index is kept in the __table_args__ it replaces.
    assert 'Index("ix_books_title_lower", text("lower(title)"))' in books["code"]


def test_analyze_markdown_shows_the_model_code_with_its_place(
    capsys: pytest.CaptureFixture[str], shop_dsn: str
) -> None:
    code = main([
        "analyze", "--dsn", shop_dsn, "--format", "markdown", "--verify", "rollback",
        "--query", "SELECT id, status FROM orders WHERE total = 1234",
        "--models", str(SHOP),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    line = _line_of(SHOP, "total: Mapped[Decimal]")
    assert re.search(rf"models\.py:{line}, class Order: add index=True", out)
    assert "total: Mapped[Decimal] = mapped_column(Numeric(12, 2), index=True)" in out
    assert 'Index("ix_orders_total", Order.total)' in out  # the after-class form


def test_analyze_without_models_reflects_and_keeps_the_guessed_code(
    capsys: pytest.CaptureFixture[str], shop_dsn: str
) -> None:
    document = _analyze(capsys, shop_dsn)
    assert document["models"]["source"] == "reflected"
    assert "sqlacodegen" in document["models"]["note"]
    assert document["models"]["classes"] >= 6
    for suggestion in document["suggestions"]:
        assert suggestion["model"] is None
        assert suggestion["sqlalchemy"].startswith("Index(")


def test_bad_models_target_fails_analyze_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main([
        "analyze", "--dsn", "postgresql://nobody@127.0.0.1:1/none", "--query", "SELECT 1",
        "--models", str(MODELS_DIR / "broken" / "raises.py"),
    ])  # fmt: skip
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("explainer: error: ") and "raises.py" in line
    assert os.path.basename(str(MODELS_DIR / "broken" / "raises.py")) in line
