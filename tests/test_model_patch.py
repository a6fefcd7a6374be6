"""The model patch: index suggestions as a unified diff to the user's model files.

Every patch here is applied for real (``git apply --check`` then ``git apply``) to a copy
of a models file in a throwaway git repository, and the patched models are imported in
a subprocess, as the user's project would: the test then reads the indexes SQLAlchemy
itself builds from them. The acceptance test runs ``explainer analyze --models`` on a
real PostgreSQL, creates the suggested indexes from the suggestion's SQL and asks
Alembic's autogenerate comparison whether the patched models and the database agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from explainer import cli
from explainer.advise.ddl import create_index_sql
from explainer.advise.model import IndexCandidate, IndexSuggestion
from explainer.capture import read_input
from explainer.orm.models import ModelMap, load_models
from explainer.pipeline import analyze_orm
from explainer.render.patch import model_patch, orm_snippets
from explainer.render.sql import index_sql
from explainer.render.sqlalchemy import model_index_suggestion
from explainer.report import DatabaseInfo, OrmReport, Report
from explainer.workload import build_workload

MODELS_DIR = Path(__file__).resolve().parent / "fixtures" / "models"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs" / "generated"
# SQLAlchemy 2.0's echo log of the corpus workload: the books of 5 authors loaded one by one.
ECHO_LOG = CORPUS / "sqlalchemy2.0_echo_psycopg3.log"

#: Imports a models module in a fresh interpreter and prints, per table, the CREATE
#: INDEX statements SQLAlchemy compiles from it; with a DSN, also the index differences
#: Alembic's autogenerate finds between those models and that database.
INSPECT = r"""
import importlib, json, sys
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex
module = importlib.import_module(sys.argv[1])
metadata = module.Base.metadata
out = {"indexes": {}, "diffs": None}
for table in metadata.tables.values():
    out["indexes"][table.fullname] = sorted(
        str(CreateIndex(i).compile(dialect=postgresql.dialect())).strip() for i in table.indexes
    )
if len(sys.argv) > 2:
    import psycopg, sqlalchemy
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    dsn = sys.argv[2]
    engine = sqlalchemy.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    out["diffs"] = sorted(
        [d[0], d[1].name] for d in diffs
        if isinstance(d, tuple) and d[0] in ("add_index", "remove_index")
    )
print(json.dumps(out))
"""


def _git(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, input=stdin, capture_output=True, text=True, check=False
    )


def _repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    assert _git(path, "init", "-q").returncode == 0
    return path


def _apply(repo: Path, patch: str) -> None:
    """``git apply --check``, then ``git apply``: both must accept the patch as written."""
    (repo / "model.patch").write_text(patch, encoding="utf-8")
    check = _git(repo, "apply", "--check", "model.patch")
    assert check.returncode == 0, check.stderr + patch
    applied = _git(repo, "apply", "model.patch")
    assert applied.returncode == 0, applied.stderr
    (repo / "model.patch").unlink()


def _inspect(repo: Path, module: str, dsn: str | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    args = [sys.executable, "-c", INSPECT, module, *([dsn] if dsn else [])]
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr  # the patched models still import
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _report(models: ModelMap | None, *candidates: IndexCandidate) -> Report:
    return Report(
        database=DatabaseInfo("17", "shop", "postgresql://localhost/shop", "rollback"),
        suggestions=[IndexSuggestion(c, {}) for c in candidates],
        orm=OrmReport(models=models),
    )


def _model_sql(candidate: IndexCandidate, models: ModelMap) -> str:
    """The CREATE INDEX the model declaration compiles to, as the advisor wrote it."""
    mapped = models.for_table(candidate.table, candidate.schema)
    assert mapped is not None
    return model_index_suggestion(candidate, mapped).sql


# -- a models file written for the test: each form of declaration -------------------------

LIBRARY = '''\
"""A lending library."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Author(Base):
    """A writer."""

    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))  # shown on the page
    born: Mapped[int]


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = {"comment": "who borrowed what"}

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(
        ForeignKey("authors.id"),
    )
    due: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
'''


@pytest.fixture(scope="module")
def library_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelMap]:
    """The library file and its model map, described by the real probe (once)."""
    source = tmp_path_factory.mktemp("library-source") / "library.py"
    source.write_text(LIBRARY, encoding="utf-8")
    return source, load_models(str(source))


def _library_repo(tmp_path: Path, source: Path) -> Path:
    repo = _repository(tmp_path / "project")
    shutil.copy(source, repo / "library.py")
    return repo


@pytest.mark.parametrize(
    ("candidates", "expected_lines"),
    [
        (  # a plain column: index=True, its trailing comment kept
            [IndexCandidate.of("public", "authors", "name")],
            [
                "    name: Mapped[str] = mapped_column(String(200), index=True)"
                "  # shown on the page\n"
            ],
        ),
        (  # an annotation without mapped_column(): one is added
            [IndexCandidate.of("public", "authors", "born")],
            ["    born: Mapped[int] = mapped_column(index=True)\n"],
        ),
        (  # a mapped_column(...) over three lines
            [IndexCandidate.of("public", "loans", "author_id")],
            [
                "    author_id: Mapped[int] = mapped_column(\n"
                '        ForeignKey("authors.id"), index=True)\n'
            ],
        ),
        (  # an expression, no __table_args__ yet: added after __tablename__, imports too
            [IndexCandidate.of("public", "authors", "lower(name)")],
            [
                "from sqlalchemy import ForeignKey, Index, String, text\n",
                '    __tablename__ = "authors"\n'
                '    __table_args__ = (Index("ix_authors_lower_name", ',
            ],
        ),
        (  # two entries for one class with a dict __table_args__: one tuple, dict last
            [
                IndexCandidate.of("public", "loans", "status", "due DESC"),
                IndexCandidate.of("public", "loans", "due", where="status = 'late'"),
            ],
            ['        {"comment": "who borrowed what"},\n    )\n'],
        ),
        (  # two classes' __table_args__ needing different names: one import for both
            [
                IndexCandidate.of("public", "loans", "due DESC"),
                IndexCandidate.of("public", "authors", "born", "name"),
            ],
            ["from sqlalchemy import ForeignKey, Index, String, text\n"],
        ),
        (  # the same, the other way round
            [
                IndexCandidate.of("public", "authors", "born", "name"),
                IndexCandidate.of("public", "loans", "due DESC"),
            ],
            ["from sqlalchemy import ForeignKey, Index, String, text\n"],
        ),
        (  # changes to two classes and an import, in one file
            [
                IndexCandidate.of("public", "authors", "name"),
                IndexCandidate.of("public", "loans", "status", "due DESC"),
            ],
            ["from sqlalchemy import ForeignKey, Index, String, text\n"],
        ),
    ],
)
def test_patch_applies_and_the_models_build_the_suggested_indexes(
    tmp_path: Path,
    library_models: tuple[Path, ModelMap],
    candidates: list[IndexCandidate],
    expected_lines: list[str],
) -> None:
    source, models = library_models
    repo = _library_repo(tmp_path, source)
    before = _inspect(repo, "library")["indexes"]
    patch = model_patch(_report(models, *candidates), root=source.parent)
    assert patch is not None
    assert patch.startswith("--- a/library.py\n+++ b/library.py\n")
    _apply(repo, patch)
    patched = (repo / "library.py").read_text(encoding="utf-8")
    for line in expected_lines:
        assert line in patched
    after = _inspect(repo, "library")["indexes"]
    for candidate in candidates:
        table = candidate.table
        expected = _model_sql(candidate, models)
        assert expected in after[table], (expected, after[table])
    added = sum(len(after[t]) - len(before[t]) for t in after)
    assert added == len(candidates)  # nothing else changed, nothing lost
    assert orm_snippets(_report(models, *candidates), root=source.parent) == ""


def test_patch_is_also_accepted_by_patch_p1(
    tmp_path: Path, library_models: tuple[Path, ModelMap]
) -> None:
    if shutil.which("patch") is None:
        pytest.skip("no patch program on this machine")
    source, models = library_models
    repo = _library_repo(tmp_path, source)
    candidates = [
        IndexCandidate.of("public", "authors", "name"),
        IndexCandidate.of("public", "loans", "status", "due DESC"),
    ]
    patch = model_patch(_report(models, *candidates), root=source.parent)
    assert patch is not None
    done = subprocess.run(
        ["patch", "-p1", "--forward"], cwd=repo, input=patch, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    after = _inspect(repo, "library")["indexes"]
    assert _model_sql(candidates[1], models) in after["loans"]


def test_crlf_file_without_final_newline_keeps_its_line_endings(tmp_path: Path) -> None:
    source = tmp_path / "source" / "library.py"
    source.parent.mkdir()
    crlf = LIBRARY.replace("\n", "\r\n").rstrip("\r\n").encode()
    source.write_bytes(crlf)
    models = load_models(str(source))
    repo = _repository(tmp_path / "project")
    (repo / "library.py").write_bytes(crlf)
    # The last line of the file is the one that changes.
    candidates = [
        IndexCandidate.of("public", "loans", "status"),
        IndexCandidate.of("public", "authors", "lower(name)"),
    ]
    patch = model_patch(_report(models, *candidates), root=source.parent)
    assert patch is not None
    assert "\\ No newline at end of file\n" in patch
    _apply(repo, patch)
    patched = (repo / "library.py").read_bytes()
    assert patched.count(b"\n") == patched.count(b"\r\n")  # no bare LF introduced
    assert patched.endswith(b"mapped_column(String(20), index=True)\r\n")
    after = _inspect(repo, "library")["indexes"]
    assert _model_sql(candidates[0], models) in after["loans"]
    assert _model_sql(candidates[1], models) in after["authors"]


def test_nothing_to_patch_is_none_and_what_cannot_be_patched_is_a_snippet(
    tmp_path: Path, library_models: tuple[Path, ModelMap]
) -> None:
    source, models = library_models
    name = IndexCandidate.of("public", "authors", "name")
    unmapped = IndexCandidate.of("public", "invoices", "number")
    # No --models: nothing of the user's to change.
    assert model_patch(_report(None, name)) is None
    # A table no class maps: no patch, a snippet that says why.
    assert model_patch(_report(models, unmapped), root=source.parent) is None
    snippets = orm_snippets(_report(models, unmapped), root=source.parent)
    assert "`invoices`" in snippets and "no class of your models maps it" in snippets
    # A models file outside the project root is never patched; its change is shown.
    elsewhere = _repository(tmp_path / "elsewhere")
    assert model_patch(_report(models, name), root=elsewhere) is None
    snippets = orm_snippets(_report(models, name), root=elsewhere)
    assert "is outside" in snippets
    assert "name: Mapped[str] = mapped_column(String(200), index=True)" in snippets


def test_a_file_changed_since_the_models_were_read_is_not_patched_blindly(
    tmp_path: Path, library_models: tuple[Path, ModelMap]
) -> None:
    source, _ = library_models
    project = _library_repo(tmp_path, source)
    # The map points at the copy; then the copy gains two lines above the class.
    moved = load_models(str(project / "library.py"))
    changed = LIBRARY.replace("class Base(", "# moved\n\nclass Base(", 1)
    (project / "library.py").write_text(changed, encoding="utf-8")
    candidate = IndexCandidate.of("public", "authors", "name")
    assert model_patch(_report(moved, candidate), root=project) is None
    assert "not where it was" in orm_snippets(_report(moved, candidate), root=project)


def test_loader_rewrites_from_a_log_are_snippets_not_patches(tmp_path: Path) -> None:
    """A log says which statements ran, not where the query is written: the rewrite is a
    snippet, and the models file (whose relationship it names) is left alone."""
    queries, _ = read_input(str(ECHO_LOG))
    models = load_models(str(MODELS_DIR / "shop" / "models.py"))
    report = Report(
        database=DatabaseInfo("17.0", "shop", "postgresql://app@db/shop", "none"),
        orm=analyze_orm(build_workload(queries, keep_order=True), models),
    )
    assert report.orm.nplus1  # the log's N+1: Author.books, one lazy load per author
    assert model_patch(report, root=MODELS_DIR) is None
    snippets = orm_snippets(report, root=MODELS_DIR)
    assert "## Loader-option rewrites" in snippets
    assert "### `Author.books` -> `selectinload`" in snippets
    assert (
        "```python\nfrom sqlalchemy import select\nfrom sqlalchemy.orm import selectinload\n\n"
        "session.scalars(select(Author).options(selectinload(Author.books)))\n```"
    ) in snippets
    assert "models.py:" in snippets  # where the relationship is declared


# -- acceptance: explainer analyze --models on PostgreSQL, then Alembic ------------------


@pytest.fixture(scope="module")
def shop_project(tmp_path_factory: pytest.TempPathFactory, db_dsn: str) -> Path:
    """A git repository holding a copy of the shop models, and the models' tables, created
    from them, with data that makes two indexes worth it: orders by ``total`` (one plain
    column) and books by author and price (two columns: ``__table_args__``)."""
    return _shop(tmp_path_factory.mktemp("shop-project"), db_dsn)


def _shop(path: Path, db_dsn: str, convention: str | None = None) -> Path:
    repo = _repository(path)
    shutil.copytree(MODELS_DIR / "shop", repo / "shop")
    if convention is not None:
        models = repo / "shop" / "models.py"
        text = models.read_text()
        default = '"ix": "ix_%(table_name)s_%(column_0_N_name)s"'
        assert default in text
        models.write_text(text.replace(default, f'"ix": "{convention}"'))
    script = (
        "import sys, psycopg, sqlalchemy\n"
        "from shop.models import Base\n"
        "engine = sqlalchemy.create_engine('postgresql+psycopg://', "
        "creator=lambda: psycopg.connect(sys.argv[1]))\n"
        "with engine.begin() as conn:\n"
        "    conn.execute(sqlalchemy.text('CREATE SCHEMA IF NOT EXISTS audit'))\n"
        "    Base.metadata.create_all(conn)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, db_dsn], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (id, email, country) "
            "SELECT g, 'c' || g || '@example.com', 'DE' FROM generate_series(1, 1000) g"
        )
        conn.execute(
            "INSERT INTO orders (id, customer_id, status, placed_at, total) "
            "SELECT g, 1 + g % 1000, 'shipped', now() - g * interval '1 minute', g % 5000 "
            "FROM generate_series(1, 200000) g"
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
    return repo


def test_exported_patch_applies_and_alembic_finds_no_index_difference(
    shop_project: Path,
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = shop_project
    models_file = repo / "shop" / "models.py"
    reports: list[Report] = []
    emit = cli.emit_report

    def keep(report: Report, args: Any) -> int:
        reports.append(report)
        return emit(report, args)

    monkeypatch.setattr(cli, "emit_report", keep)
    monkeypatch.chdir(repo)  # where a user runs explainer from: the project root
    code = cli.main([
        "analyze", "--dsn", db_dsn, "--format", "json", "--verify", "rollback",
        "--query", "SELECT id, status FROM orders WHERE total = 1234",
        "--query", "SELECT id, title FROM books WHERE author_id = 7 AND price > 90",
        "--models", str(models_file),
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [report] = reports
    by_table = {s.candidate.table: s.candidate for s in report.suggestions}
    assert set(by_table) == {"orders", "books"}

    patch = model_patch(report)
    assert patch is not None
    assert patch.startswith("--- a/shop/models.py\n+++ b/shop/models.py\n")
    # Two changes, in two classes: the column line and Book's __table_args__.
    assert "+    total: Mapped[Decimal] = mapped_column(Numeric(12, 2), index=True)\n" in patch
    assert '+        Index("ix_books_title_lower", text("lower(title)")),\n' in patch
    assert _git(repo, "status", "--porcelain", "--untracked-files=no").stdout == ""
    _apply(repo, patch)

    # Before the indexes exist, Alembic sees them missing: the comparison can fail.
    seen = _inspect(repo, "shop.models", db_dsn)
    names = {}
    for table, candidate in by_table.items():
        suggested = index_sql(candidate)  # CREATE INDEX CONCURRENTLY IF NOT EXISTS ...;
        plain = suggested.replace(" CONCURRENTLY IF NOT EXISTS", "").rstrip(";")
        assert plain == create_index_sql(candidate)
        # The patched model's Index compiles to the suggestion's own SQL.
        assert plain in seen["indexes"][table], (plain, seen["indexes"][table])
        names[table] = candidate.name
        assert ["add_index", candidate.name] in seen["diffs"]

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for candidate in by_table.values():
            conn.execute(index_sql(candidate).encode())
    seen = _inspect(repo, "shop.models", db_dsn)
    ours = [d for d in seen["diffs"] if d[1] in names.values()]
    assert ours == []


def test_export_names_the_index_as_the_models_naming_convention_does(
    tmp_path: Path,
    make_database: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A project whose convention is ``idx_...``: the migration, the SQL script and the
    patched model all build ``idx_orders_total``, so Alembic sees nothing to change."""
    dsn = make_database()
    repo = _shop(tmp_path / "repo", dsn, convention="idx_%(table_name)s_%(column_0_N_name)s")
    out = tmp_path / "out"
    monkeypatch.chdir(repo)  # the patch names files relative to where explainer runs
    code = cli.main([
        "analyze", "--dsn", dsn, "--format", "json", "-o", str(tmp_path / "r.json"),
        "--query", "SELECT id, status FROM orders WHERE total = 1234",
        "--models", str(repo / "shop" / "models.py"), "--export", str(out),
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    [suggestion] = json.loads((out / "report.json").read_text())["suggestions"]
    assert suggestion["name"] == "idx_orders_total"
    assert "idx_orders_total" in (out / "indexes.sql").read_text()
    assert "'idx_orders_total'" in (out / "migration_add_indexes.py").read_text()
    _apply(repo, (out / "models.patch").read_text())
    assert cli.main(["apply", "--dsn", dsn, "--yes", str(out / "indexes.sql")]) == 0
    seen = _inspect(repo, "shop.models", dsn)
    assert [d for d in seen["diffs"] if "orders" in str(d) or "total" in str(d)] == []
