"""The in-app capture, end to end: an app's N+1 named by the application lines that cause it.

The acceptance test runs the app of tests/apps/library.py (plain SQLAlchemy 2 ORM, a loop
over authors touching ``author.books``) against a real PostgreSQL with
``explainer.capture.hook.install`` writing a JSONL file, runs ``explainer analyze`` on that
file, and checks that the N+1 finding names the loop's line and the parent query's line
(found in the app's source by their marker comments). The export's patch is then applied
to a copy of the app with ``git apply``, and the patched app, captured again, sends two
statements instead of nine.

The other tests place loader options in application files of each form the patch knows
(``select(...)`` on the line, a statement assigned earlier, ``session.query``) and the
forms it leaves as snippets, from a workload built with the call sites a capture gives.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine

from explainer.capture import CapturedQuery, read_input
from explainer.capture.hook import capturing
from explainer.cli import main
from explainer.orm.nplus1 import detect
from explainer.orm.patterns import detect_patterns
from explainer.render.json import pattern_dict
from explainer.render.patch import loader_snippets, model_patch
from explainer.report import DatabaseInfo, OrmReport, Report
from explainer.workload import build_workload

APP = Path(__file__).resolve().parent / "apps" / "library.py"


def marked_line(path: Path, marker: str) -> int:
    """The 1-based line of ``path`` that carries ``# marker: <marker>``."""
    [number] = [
        n
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.rstrip().endswith(f"# marker: {marker}")
    ]
    return number


def as_captured(path: Path) -> str:
    """The file as the capture writes a call site: relative to the current directory
    when under it (as the test runs from the project root), else absolute."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd() + os.sep
    return absolute[len(cwd) :] if absolute.startswith(cwd) else absolute


def load_app(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclass-style annotations resolve through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def engine(make_database: Callable[[], str]) -> Iterator[tuple[str, Engine]]:
    dsn = make_database()
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    try:
        yield dsn, engine
    finally:
        engine.dispose()


def analyze_json(dsn: str, log: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main(["analyze", "--dsn", dsn, "--log", str(log), "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


def test_the_n_plus_1_of_a_captured_app_names_its_loop_and_its_parent_query(
    engine: tuple[str, Engine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn, sa_engine = engine
    app = load_app(APP, "explainer_test_library_app")
    app.create(sa_engine)
    log = tmp_path / "capture.jsonl"
    with capturing(sa_engine, log):
        counts = app.list_authors(sa_engine)
    assert counts == [(f"Author {n}", 3) for n in range(1, 9)]

    report = analyze_json(dsn, log, "--export", str(tmp_path / "out"), capsys=capsys)

    loop = f"{as_captured(APP)}:{marked_line(APP, 'loop')}"
    parent = f"{as_captured(APP)}:{marked_line(APP, 'parent')}"
    [finding] = [f for f in report["orm_findings"] if f["rule"] == "n-plus-one"]
    assert finding["relationship"] == "Author.books"
    assert (finding["count"], finding["occurrences"]) == (8, 1)
    assert finding["location"] == loop
    assert finding["source_location"] == parent
    # The query entries say which lines ran each shape: the lookup, eight times, the loop.
    by_id = {q["id"]: q for q in report["queries"]}
    assert by_id[finding["repeated"]["query"]]["locations"] == [{"location": loop, "calls": 8}]
    assert by_id[finding["source"]["query"]]["locations"] == [{"location": parent, "calls": 1}]

    # The export patches the line that builds the parent query; applied to a copy of the
    # app, the loop runs without lazy loads.
    patch = (tmp_path / "out" / "models.patch").read_text()
    relative = as_captured(APP)
    assert f"+++ b/{relative}" in patch
    assert (
        "+        authors = session.scalars(select(Author).options(selectinload(Author.books))"
        ".order_by(Author.id)).all()  # marker: parent"
    ) in patch
    repo = tmp_path / "repo"
    (repo / relative).parent.mkdir(parents=True)
    shutil.copy(APP, repo / relative)
    assert _git(repo, "init", "-q").returncode == 0
    (repo / "fix.patch").write_text(patch)
    applied = _git(repo, "apply", "fix.patch")
    assert applied.returncode == 0, applied.stderr + patch

    fixed = load_app(repo / relative, "explainer_test_library_app_fixed")
    fixed_log = tmp_path / "fixed.jsonl"
    with capturing(sa_engine, fixed_log):
        assert fixed.list_authors(sa_engine) == counts
    queries, _ = read_input(str(fixed_log))
    selects = [q for q in queries if q.sql.startswith("SELECT") and "pg_catalog" not in q.sql]
    assert len(selects) == 2  # the authors, then their books with one IN list
    assert "IN (" in selects[1].sql or "= ANY" in selects[1].sql
    workload = build_workload(queries, keep_order=True)
    assert detect(workload) == []


# -- placing the loader option in application files of each form --------------------------

LOOKUP = "SELECT books.id, books.title, books.author_id FROM books WHERE books.author_id = $1"


def nplus1_report(parent: str | None, loop: str | None) -> Report:
    """A report with one N+1 (Author.books, named from the SQL) captured at those lines."""
    queries = [
        CapturedQuery(
            "SELECT authors.id, authors.name FROM authors ORDER BY authors.id",
            session="1.1",
            transaction="1.1#1",
            location=parent,
        )
    ]
    queries += [
        CapturedQuery(
            LOOKUP, session="1.1", transaction="1.1#1", parameters=(str(n),), location=loop
        )
        for n in range(1, 7)
    ]
    [finding] = detect(build_workload(queries, keep_order=True))
    return Report(
        database=DatabaseInfo("17", "library", "postgresql://localhost/library", "none"),
        orm=OrmReport(nplus1=[finding]),
    )


def write_app(root: Path, body: str) -> tuple[str, int]:
    """``app.py`` under ``root``; returns its name and the line marked ``# parent``."""
    path = root / "app.py"
    path.write_text(body)
    return "app.py", marked_line(path, "parent")


HEADER = (
    "from sqlalchemy import select\n"
    "from sqlalchemy.orm import Session\n"
    "\n"
    "from library import Author\n"
    "\n"
    "\n"
)


def test_select_on_the_line_gets_the_option_and_the_import(tmp_path: Path) -> None:
    name, line = write_app(
        tmp_path,
        HEADER + "def authors(session: Session) -> list[Author]:\n"
        "    return list(session.scalars(select(Author)))  # marker: parent\n",
    )
    report = nplus1_report(f"{name}:{line}", f"{name}:40")
    patch = model_patch(report, root=tmp_path)
    assert patch == (
        "--- a/app.py\n+++ b/app.py\n@@ -1,8 +1,8 @@\n"
        " from sqlalchemy import select\n"
        "-from sqlalchemy.orm import Session\n"
        "+from sqlalchemy.orm import Session, selectinload\n"
        " \n from library import Author\n \n \n def authors(session: Session) -> list[Author]:\n"
        "-    return list(session.scalars(select(Author)))  # marker: parent\n"
        "+    return list(session.scalars(select(Author).options(selectinload(Author.books))))"
        "  # marker: parent\n"
    )
    assert loader_snippets(report, root=tmp_path) == ""


def test_a_statement_built_earlier_in_the_function_is_the_one_patched(tmp_path: Path) -> None:
    name, line = write_app(
        tmp_path,
        HEADER + "def authors(session: Session) -> list[Author]:\n"
        "    stmt = (\n"
        "        select(Author)\n"
        "        .order_by(Author.name)\n"
        "    )\n"
        "    other = select(Author).limit(1)\n"
        "    return list(session.scalars(stmt))  # marker: parent\n",
    )
    patch = model_patch(nplus1_report(f"{name}:{line}", None), root=tmp_path)
    assert patch is not None
    assert "+        select(Author).options(selectinload(Author.books))\n" in patch
    assert patch.count(".options(") == 1  # not the other select(Author) of the function


def test_legacy_query_is_patched_too(tmp_path: Path) -> None:
    name, line = write_app(
        tmp_path,
        HEADER + "def authors(session: Session) -> list[Author]:\n"
        "    return session.query(Author).filter(Author.id > 0).all()  # marker: parent\n",
    )
    patch = model_patch(nplus1_report(f"{name}:{line}", None), root=tmp_path)
    assert patch is not None
    assert (
        "+    return session.query(Author).options(selectinload(Author.books))"
        ".filter(Author.id > 0).all()  # marker: parent\n"
    ) in patch


def test_a_line_the_patch_cannot_read_is_a_snippet_naming_it(tmp_path: Path) -> None:
    name, line = write_app(
        tmp_path,
        HEADER + "def authors(session: Session, repo: object) -> list[Author]:\n"
        "    return repo.all_authors(session)  # marker: parent\n",
    )
    report = nplus1_report(f"{name}:{line}", "app.py:12")
    assert model_patch(report, root=tmp_path) is None
    snippets = loader_snippets(report, root=tmp_path)
    assert f"Change the statement at `app.py:{line}`." in snippets
    assert (
        f"Not patched: line {line} builds no select(Author) or query(Author) "
        "the patch can extend." in snippets
    )
    assert "The loop that lazy-loads is at `app.py:12`." in snippets
    assert "session.scalars(select(Author).options(selectinload(Author.books)))" in snippets

    moved = nplus1_report("gone.py:3", None)
    assert model_patch(moved, root=tmp_path) is None
    assert "Not patched: cannot read gone.py: " in loader_snippets(moved, root=tmp_path)


def test_without_call_sites_nothing_is_patched_and_the_snippets_stay_in_the_report(
    tmp_path: Path,
) -> None:
    report = nplus1_report(None, None)
    [finding] = report.orm.nplus1
    assert (finding.location, finding.source_location) == (None, None)
    assert model_patch(report, root=tmp_path) is None
    assert loader_snippets(report, root=tmp_path) == ""


def test_pattern_findings_name_the_line_that_ran_their_shape() -> None:
    """repeated-query: one SELECT with the same value three times in one transaction, run
    from one line; its finding (and its JSON entry) points at that line."""
    queries = [
        CapturedQuery(
            "SELECT owners.id, owners.name FROM owners WHERE owners.id = $1",
            session="1.1",
            transaction="1.1#1",
            parameters=("7",),
            location="app/views.py:31",
        )
        for _ in range(3)
    ]
    [finding] = detect_patterns(build_workload(queries, keep_order=True))
    assert (finding.rule, finding.location) == ("repeated-query", "app/views.py:31")
    entry = pattern_dict(finding)
    assert (entry["location"], entry["source_location"], entry["declared_at"]) == (
        "app/views.py:31",
        None,
        None,
    )
