"""The user's models, read in a subprocess: the map, and every way an import goes wrong.

Expected entries are read off ``tests/fixtures/models/shop/models.py`` by hand.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from explainer.orm.models import (
    MappedClass,
    ModelImportError,
    ModelMap,
    RelationshipInfo,
    load_models,
)
from explainer.orm.reflect import reflect_models

MODELS = Path(__file__).resolve().parent / "fixtures" / "models"
SHOP = MODELS / "shop" / "models.py"


def _line_of(text: str) -> int:
    """The line of ``text`` in the shop fixture (so the test does not hard-code numbers)."""
    [line] = [n for n, s in enumerate(SHOP.read_text().splitlines(), 1) if s.strip() == text]
    return line


@pytest.fixture
def in_models_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(MODELS)
    yield MODELS


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped by init."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = re.search(r"^State:\s+(\w)", status, re.M)
    return state is not None and state.group(1) != "Z"


def _probes_running(marker: str) -> list[int]:
    """Pids of processes whose command line mentions ``marker`` (our probe's target)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and "_probe" not in cmdline and _alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


# --- the map --------------------------------------------------------------------------


def test_module_path_is_imported_from_the_current_directory(in_models_dir: Path) -> None:
    models = load_models("shop.models")
    assert models.source == "models"
    assert sorted(models.classes) == [
        "audit.events",
        "authors",
        "books",
        "customers",
        "order_items",
        "orders",
        "reviews",
        "tags",
    ]
    author = models.classes["authors"]
    assert author == MappedClass(
        name="Author",
        module="shop.models",
        file=str(SHOP),
        line=_line_of("class Author(Base):"),
        table="authors",
        schema=None,
        columns={"id": "id", "name": "name"},
        relationships=[
            RelationshipInfo(
                attribute="books",
                target_class="Book",
                target_table="books",
                direction="ONETOMANY",
                uselist=True,
                local_columns=("id",),
                remote_columns=("author_id",),
                secondary=None,
                lazy="select",
            )
        ],
        indexes=[],
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        },
        attribute_lines={
            "id": _line_of("class Author(Base):") + 3,  # every class has this same line
            "name": _line_of("name: Mapped[str] = mapped_column(String(200))"),
            "books": _line_of('books: Mapped[list[Book]] = relationship(back_populates="author")'),
        },
        attribute_sources={
            "id": "id: Mapped[int] = mapped_column(primary_key=True)",
            "name": "name: Mapped[str] = mapped_column(String(200))",
            "books": 'books: Mapped[list[Book]] = relationship(back_populates="author")',
        },
    )


def _relationship(models: ModelMap, table: str, attribute: str) -> RelationshipInfo:
    [found] = [r for r in models.classes[table].relationships if r.attribute == attribute]
    return found


@pytest.mark.parametrize(
    ("table", "attribute", "expected"),
    [
        # Book.author: many-to-one through books.author_id.
        (
            "books",
            "author",
            ("Author", "authors", "MANYTOONE", False, ("author_id",), ("id",), None, "select"),
        ),
        # Book.tags: many-to-many through book_tags, loaded with selectin.
        (
            "books",
            "tags",
            ("Tag", "tags", "MANYTOMANY", True, ("id",), ("book_id",), "book_tags", "selectin"),
        ),
        (
            "customers",
            "orders",
            ("Order", "orders", "ONETOMANY", True, ("id",), ("customer_id",), None, "select"),
        ),
        # Review.customer is declared lazy="joined".
        (
            "reviews",
            "customer",
            (
                "Customer",
                "customers",
                "MANYTOONE",
                False,
                ("customer_id",),
                ("id",),
                None,
                "joined",
            ),
        ),
        (
            "order_items",
            "book",
            ("Book", "books", "MANYTOONE", False, ("book_id",), ("id",), None, "select"),
        ),
        (
            "orders",
            "items",
            ("OrderItem", "order_items", "ONETOMANY", True, ("id",), ("order_id",), None, "select"),
        ),
    ],
)
def test_relationships_have_direction_columns_and_strategy(
    in_models_dir: Path, table: str, attribute: str, expected: tuple[object, ...]
) -> None:
    found = _relationship(load_models("shop.models"), table, attribute)
    assert (
        found.target_class,
        found.target_table,
        found.direction,
        found.uselist,
        found.local_columns,
        found.remote_columns,
        found.secondary,
        found.lazy,
    ) == expected


def test_columns_indexes_and_table_args(in_models_dir: Path) -> None:
    models = load_models("shop.models")
    book = models.classes["books"]
    # published: Mapped[...] = mapped_column("published_on"): the attribute is not the column.
    assert book.columns["published_on"] == "published"
    assert book.attribute("published_on") == "published"
    assert book.indexes == ["ix_books_title_lower"]
    assert book.table_args_line == _line_of(
        '__table_args__ = (Index("ix_books_title_lower", text("lower(title)")),)'
    )
    customer = models.classes["customers"]
    assert customer.columns == {"id": "id", "email": "email_address", "country": "country"}
    # index=True under the naming convention "ix_%(table_name)s_%(column_0_N_name)s".
    assert customer.indexes == ["ix_customers_email"]
    order = models.classes["orders"]
    assert order.indexes == ["ix_orders_customer_id", "ix_orders_status_placed"]
    assert order.table_args_source is not None
    assert order.table_args_source.startswith("__table_args__ = (\n")
    assert '{"comment": "one checkout"}' in order.table_args_source
    event = models.classes["audit.events"]
    assert (event.name, event.schema, event.columns) == (
        "AuditEvent",
        "audit",
        {"id": "id", "type": "kind", "payload": "payload"},
    )
    assert models.for_table("audit.events") is event
    assert models.for_table("public.orders") is order
    assert models.for_table("events") is event  # unambiguous without its schema


@pytest.mark.parametrize(
    "target",
    [
        "shop.models:Base",
        "shop.models:Base.registry",
        str(SHOP),  # a file inside a package: imported as shop.models
        "shop/models.py",
    ],
)
def test_other_target_forms_give_the_same_map(in_models_dir: Path, target: str) -> None:
    models = load_models(target)
    assert sorted(models.classes) == sorted(load_models("shop.models").classes)
    assert models.classes["order_items"].name == "OrderItem"
    assert models.classes["order_items"].module == "shop.models"


def test_a_plain_file_is_imported_with_its_directory_on_sys_path(tmp_path: Path) -> None:
    (tmp_path / "helpers_for_models.py").write_text("TABLE = 'gadgets'\n")
    (tmp_path / "app_models.py").write_text(
        "from helpers_for_models import TABLE\n"
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
        "class Base(DeclarativeBase):\n"
        "    pass\n"
        "class Gadget(Base):\n"
        "    __tablename__ = TABLE\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    )
    models = load_models(str(tmp_path / "app_models.py"))
    gadget = models.classes["gadgets"]
    assert (gadget.name, gadget.module, gadget.line) == ("Gadget", "app_models", 5)


def test_a_module_that_prints_and_reads_stdin_still_loads(in_models_dir: Path) -> None:
    models = load_models("broken.noisy")
    assert models.classes["settings"].columns == {"key": "key", "value": "value"}


# --- failures: one line, in time, nothing left running -----------------------------------


SYNTAX_ERROR = """\
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase)
    pass
"""


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "broken.missing_dependency",
            r"^importing broken\.missing_dependency needs the module 'shop_payments_sdk', "
            r"which is not installed in .*missing_dependency\.py:3\)$",
        ),
        (
            "broken.raises",
            r"^importing broken\.raises failed: KeyError: 'SHOP_DATABASE_URL_THAT_IS_NOT_SET' "
            r"\(at .*raises\.py:5\)$",
        ),
        (
            "broken.no_models",
            r"^broken\.no_models defines no mapped classes; point --models at",
        ),
        ("shop.nothing_here", r"^cannot import shop\.nothing_here: No module named "),
        ("shop.models:Nope", r"^cannot use shop\.models:Nope: module 'shop\.models' has no "),
        (
            "broken.bad_relationship",
            r"^configuring the mappers of broken\.bad_relationship failed: InvalidRequestError: "
            r"When initializing mapper Mapper\[Invoice\(invoices\)\], expression 'InvoiceLine' "
            r"failed to locate a name .*[^)]$",  # no location inside SQLAlchemy's own code
        ),
        ("missing/models.py", r"^models file missing/models\.py does not exist$"),
    ],
)
def test_import_failures_are_one_clear_line(in_models_dir: Path, target: str, message: str) -> None:
    with pytest.raises(ModelImportError) as raised:
        load_models(target, timeout=10)
    text = str(raised.value)
    assert "\n" not in text
    assert re.search(message, text), text


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "models.py"
    path.write_text(SYNTAX_ERROR)
    with pytest.raises(ModelImportError) as raised:
        load_models(str(path), timeout=10)
    assert str(raised.value) == (
        f"syntax error importing {path}: {path}:4: SyntaxError: expected ':'"
    )


def test_sqlalchemy_missing_from_the_users_interpreter(tmp_path: Path) -> None:
    # An interpreter without explainer's site-packages: -I ignores PYTHONPATH and user site.
    wrapper = tmp_path / "python-without-sqlalchemy"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.base_prefix}/bin/python3 -I -S "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / "m.py").write_text("x = 1\n")
    with pytest.raises(ModelImportError, match=r"^SQLAlchemy is not installed in .*--python"):
        load_models(str(tmp_path / "m.py"), python=str(wrapper), timeout=10)


def test_a_hanging_import_is_stopped_at_the_timeout(in_models_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelImportError, match=r"^importing broken\.hangs took longer than 3 s"):
        load_models("broken.hangs", timeout=3)
    assert time.monotonic() - started < 3 + 2
    assert _probes_running("broken.hangs") == []


def test_processes_the_import_started_are_stopped_too(
    in_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("EXPLAINER_TEST_CHILD_PID_FILE", str(pid_file))
    started = time.monotonic()
    with pytest.raises(ModelImportError, match="took longer than 3 s"):
        load_models("broken/hangs_with_child.py", timeout=3)
    assert time.monotonic() - started < 3 + 2
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert _probes_running("hangs_with_child") == []


def test_a_successful_import_leaves_no_process(in_models_dir: Path) -> None:
    load_models("broken.noisy")
    assert _probes_running("broken.noisy") == []


# --- without models: the database, named as sqlacodegen would ---------------------------


SHOP_DDL = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE categories (id serial PRIMARY KEY, name text);
CREATE TABLE books (
    id serial PRIMARY KEY,
    author_id integer NOT NULL REFERENCES authors (id),
    category_id integer REFERENCES categories (id),
    title text NOT NULL
);
CREATE INDEX ix_books_title ON books (title);
CREATE TABLE order_items (
    id serial PRIMARY KEY,
    book_id integer NOT NULL REFERENCES books (id),
    quantity integer NOT NULL
);
CREATE TABLE people (
    id serial PRIMARY KEY,
    manager_id integer REFERENCES people (id)
);
CREATE SCHEMA audit;
CREATE TABLE audit.events (
    id serial PRIMARY KEY,
    customer_id integer REFERENCES public.customers (id),
    "type" text
);
"""


@pytest.fixture(scope="module")
def reflected(db_dsn: str) -> ModelMap:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(SHOP_DDL)
        return reflect_models(conn)


def _shape(mapped: MappedClass) -> dict[str, tuple[object, ...]]:
    return {
        r.attribute: (
            r.target_class,
            r.target_table,
            r.direction,
            r.uselist,
            r.local_columns,
            r.remote_columns,
        )
        for r in mapped.relationships
    }


def test_reflected_classes_are_named_as_sqlacodegen_would(reflected: ModelMap) -> None:
    assert reflected.source == "reflected"
    names = {key: mapped.name for key, mapped in reflected.classes.items()}
    assert names == {
        "customers": "Customer",
        "authors": "Author",
        "categories": "Category",
        "books": "Book",
        "order_items": "OrderItem",
        "people": "Person",
        "audit.events": "Event",
    }
    assert reflected.classes["audit.events"].columns == {
        "id": "id",
        "customer_id": "customer_id",
        "type": "type",
    }
    assert reflected.classes["books"].indexes == ["ix_books_title"]
    assert reflected.classes["books"].file is None


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            "books",
            {
                "author": ("Author", "authors", "MANYTOONE", False, ("author_id",), ("id",)),
                "category": (
                    "Category",
                    "categories",
                    "MANYTOONE",
                    False,
                    ("category_id",),
                    ("id",),
                ),
                "order_items": (
                    "OrderItem",
                    "order_items",
                    "ONETOMANY",
                    True,
                    ("id",),
                    ("book_id",),
                ),
            },
        ),
        ("authors", {"books": ("Book", "books", "ONETOMANY", True, ("id",), ("author_id",))}),
        (
            "customers",
            {"events": ("Event", "audit.events", "ONETOMANY", True, ("id",), ("customer_id",))},
        ),
        (
            "audit.events",
            {"customer": ("Customer", "customers", "MANYTOONE", False, ("customer_id",), ("id",))},
        ),
        # Self-reference: sqlacodegen names the pair parent/child collection after the
        # column (manager) and the table with _reverse.
        (
            "people",
            {
                "manager": ("Person", "people", "MANYTOONE", False, ("manager_id",), ("id",)),
                "manager_reverse": (
                    "Person",
                    "people",
                    "ONETOMANY",
                    True,
                    ("id",),
                    ("manager_id",),
                ),
            },
        ),
    ],
)
def test_reflected_relationships_follow_foreign_keys(
    reflected: ModelMap, table: str, expected: dict[str, tuple[object, ...]]
) -> None:
    assert _shape(reflected.classes[table]) == expected
