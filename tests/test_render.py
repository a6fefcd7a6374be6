"""Suggestions as code: the SQLAlchemy declarations must compile to the suggested SQL."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex

from explainer.advise.ddl import create_index_sql, quote_ident
from explainer.advise.model import IndexCandidate, index_name
from explainer.orm.models import MappedClass, ModelMap, load_models
from explainer.render.sql import index_sql
from explainer.render.sqlalchemy import (
    class_name,
    index_declaration,
    model_index_suggestion,
    table_args_declaration,
)


@pytest.mark.parametrize(
    ("table", "model"),
    [
        ("orders", "Order"),
        ("order_items", "OrderItem"),
        ("categories", "Category"),
        ("addresses", "Address"),
        ("statuses", "Status"),
        ("boxes", "Box"),
        ("people", "Person"),
        ("Customer", "Customer"),
        ("analysis", "Analysis"),
    ],
)
def test_class_names_follow_sqlacodegen(table: str, model: str) -> None:
    assert class_name(table) == model


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("orders", "orders"),
        ("Orders", '"Orders"'),
        ("user", '"user"'),
        ("order", '"order"'),
        ("my col", '"my col"'),
        ('we"ird', '"we""ird"'),
        ("created_at", "created_at"),
    ],
)
def test_identifiers_are_quoted_only_when_needed(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


def test_long_index_names_fit_postgres_limit_and_stay_unique() -> None:
    columns_a = ("a_very_long_column_name_number_one", "a_very_long_column_name_number_two")
    columns_b = ("a_very_long_column_name_number_one", "a_very_long_column_name_number_three")
    a = index_name("an_exceedingly_long_table_name", columns_a)
    b = index_name("an_exceedingly_long_table_name", columns_b)
    assert len(a.encode()) <= 63 and len(b.encode()) <= 63
    assert a != b
    assert a.startswith("ix_an_exceedingly_long_table_name_a_very_long")
    assert index_name("orders", ("customer_id",)) == "ix_orders_customer_id"


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String)
    created_at: Mapped[object] = mapped_column(DateTime)
    payload: Mapped[object] = mapped_column(postgresql.JSONB)


CANDIDATES = [
    IndexCandidate.of("public", "orders", "customer_id"),
    IndexCandidate.of("public", "orders", "status", "created_at DESC"),
    IndexCandidate.of("public", "orders", "customer_id", where="status = 'pending'"),
    IndexCandidate.of("public", "orders", "created_at DESC", where="status = 'pending'"),
    IndexCandidate.of("public", "orders", "status", include=("customer_id",)),
    IndexCandidate.of("public", "orders", "lower(status)"),
    IndexCandidate.of("public", "orders", "date_trunc('day', created_at) DESC"),
    IndexCandidate.of("public", "orders", "customer_id", "(payload ->> 'kind')"),
    IndexCandidate.of("public", "orders", "lower(status) gin_trgm_ops", using="gin"),
    IndexCandidate.of("public", "orders", "status gin_trgm_ops", using="gin"),
    IndexCandidate.of("public", "orders", "created_at DESC NULLS LAST"),
    IndexCandidate.of("public", "orders", "customer_id", "created_at NULLS FIRST"),
]


def compiled(index: sqlalchemy.Index) -> str:
    return str(CreateIndex(index).compile(dialect=postgresql.dialect())).strip()


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.name)
def test_index_declaration_compiles_to_the_suggested_sql(candidate: IndexCandidate) -> None:
    namespace = {"Index": sqlalchemy.Index, "text": text, "func": sqlalchemy.func, "Order": Order}
    code = index_declaration(candidate)  # the generated code, as a user pastes it
    if code.startswith("__table_args__"):
        # Expressions SQLAlchemy only takes as text() go inside the class.
        test_table_args_declaration_compiles_to_the_suggested_sql(candidate)
        return
    index = eval(code, namespace)
    assert compiled(index) == create_index_sql(candidate)


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.name)
def test_table_args_declaration_compiles_to_the_suggested_sql(candidate: IndexCandidate) -> None:
    namespace: dict[str, object] = {"Index": sqlalchemy.Index, "text": text}
    exec(table_args_declaration(candidate), namespace)
    table = Table(
        "orders",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("customer_id", Integer),
        Column("status", String),
        Column("created_at", DateTime),
        Column("payload", postgresql.JSONB),
        *namespace["__table_args__"],  # type: ignore[misc]
    )
    [index] = table.indexes
    assert compiled(index) == create_index_sql(candidate)


def test_production_sql_is_concurrent_and_rerunnable() -> None:
    candidate = IndexCandidate.of("sales", "Orders", "customer_id")
    assert index_sql(candidate) == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_customer_id ON sales."Orders" '
        "(customer_id);"
    )


# --- in the models' terms: tests/fixtures/models/shop, loaded as explainer loads it -------

MODELS_DIR = Path(__file__).resolve().parent / "fixtures" / "models"


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[ModelMap, ModuleType]]:
    """The map load_models builds, and the same module imported here to compile against."""
    cwd = os.getcwd()
    os.chdir(MODELS_DIR)
    sys.path.insert(0, str(MODELS_DIR))
    try:
        models = load_models("shop.models")
        yield models, importlib.import_module("shop.models")
    finally:
        os.chdir(cwd)
        sys.path.remove(str(MODELS_DIR))


MODEL_CANDIDATES = [
    # (candidate, form): single plain columns become index=True on the column.
    (IndexCandidate.of("public", "orders", "status"), "column"),
    (IndexCandidate.of("audit", "events", "type"), "column"),  # attribute `kind`
    (IndexCandidate.of("public", "reviews", "rating"), "column"),  # bare `rating: Mapped[int]`
    (IndexCandidate.of("public", "orders", "status", "total"), "table_args"),
    (IndexCandidate.of("public", "orders", "status", "placed_at DESC"), "table_args"),
    (
        IndexCandidate.of("public", "orders", "customer_id", where="status = 'pending'"),
        "table_args",
    ),
    (
        IndexCandidate.of("public", "orders", "placed_at DESC", where="status = 'pending'"),
        "table_args",
    ),
    (IndexCandidate.of("public", "orders", "status", include=("customer_id",)), "table_args"),
    (IndexCandidate.of("public", "orders", "lower(status)"), "table_args"),
    (IndexCandidate.of("public", "customers", "country", "lower(email)"), "table_args"),
    (IndexCandidate.of("public", "orders", "date_trunc('day', placed_at) DESC"), "table_args"),
    (IndexCandidate.of("audit", "events", "type", "(payload ->> 'kind')"), "table_args"),
    (
        IndexCandidate.of("public", "orders", "lower(status) gin_trgm_ops", using="gin"),
        "table_args",
    ),
    (IndexCandidate.of("public", "books", "title gin_trgm_ops", using="gin"), "table_args"),
    (IndexCandidate.of("public", "orders", "placed_at DESC NULLS LAST"), "table_args"),
    (IndexCandidate.of("public", "orders", "customer_id", "placed_at NULLS FIRST"), "table_args"),
]


def _mapped(models: ModelMap, candidate: IndexCandidate) -> MappedClass:
    mapped = models.for_table(candidate.table, candidate.schema)
    assert mapped is not None
    return mapped


@pytest.mark.parametrize(("candidate", "form"), MODEL_CANDIDATES, ids=lambda c: str(c))
def test_model_suggestion_compiles_to_the_suggested_sql(
    shop: tuple[ModelMap, ModuleType], candidate: IndexCandidate, form: str
) -> None:
    models, module = shop
    mapped = _mapped(models, candidate)
    suggestion = model_index_suggestion(candidate, mapped)
    assert suggestion.form == form
    assert suggestion.sql == create_index_sql(candidate, name=suggestion.name)
    assert (suggestion.class_name, suggestion.file) == (mapped.name, mapped.file)
    model = getattr(module, mapped.name)
    convention = module.Base.metadata.naming_convention
    if form == "column":
        # The changed line, in a class of its own under the same naming convention.
        assert suggestion.line == mapped.attribute_lines[mapped.columns[candidate.keys[0].text]]
        source = mapped.attribute_sources[mapped.columns[candidate.keys[0].text]]
        assert suggestion.code.startswith(source.split("=")[0])
        assert suggestion.code.endswith("index=True)")
        table = _class_with_line(module, mapped, suggestion.code, convention)
        [index] = [i for i in table.indexes if i.name == suggestion.name]
    else:
        # The whole __table_args__, existing entries kept, on a copy of the real table.
        assert suggestion.line == (mapped.table_args_line or mapped.line)
        namespace: dict[str, Any] = {
            "Index": sqlalchemy.Index,
            "text": text,
            "func": sqlalchemy.func,
        }
        exec(suggestion.code, namespace)
        args = namespace["__table_args__"]
        entries = [a for a in args if isinstance(a, sqlalchemy.Index)]
        options = [a for a in args if isinstance(a, dict)]
        assert len(entries) == len(mapped.indexes) - _flagged(model) + 1
        kwargs = options[0] if options else {}
        table = Table(
            mapped.table,
            MetaData(naming_convention=convention),
            *[c._copy() for c in model.__table__.columns],
            *entries,
            **kwargs,
        )
        [index] = [i for i in table.indexes if i.name not in mapped.indexes]
    assert compiled(index) == suggestion.sql
    # The Index(...) after the class, on the real class's attributes: the same SQL.
    if suggestion.after_class is None:
        assert any(k.expression and k.opclass for k in candidate.keys)
        return
    after = eval(
        suggestion.after_class,
        {"Index": sqlalchemy.Index, "text": text, "func": sqlalchemy.func, mapped.name: model},
    )
    assert compiled(after) == suggestion.sql


def _flagged(model: type) -> int:
    """Indexes from index=True on a column: not written in __table_args__."""
    table: Table = getattr(model, "__table__")  # noqa: B009 - not declared on `type`
    return sum(1 for i in table.indexes if getattr(i, "_column_flag", False))


def _class_with_line(
    module: ModuleType, mapped: MappedClass, line: str, convention: Mapping[str, Any]
) -> Table:
    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=dict(convention))

    body = [f"__tablename__ = {mapped.table!r}"]
    if mapped.schema:
        body.append(f"__table_args__ = {{'schema': {mapped.schema!r}}}")
    body += ["pk: Mapped[int] = mapped_column('pk_for_test', primary_key=True)", line]
    source = f"class {mapped.name}(Base):\n" + "".join(f"    {b}\n" for b in body)
    namespace = {**vars(module), "Base": Base}
    exec(source, namespace)
    table: Table = namespace[mapped.name].__table__
    return table


@pytest.mark.parametrize(
    ("candidate", "name"),
    [
        # The shop's convention is ix_%(table_name)s_%(column_0_N_name)s.
        (IndexCandidate.of("public", "orders", "status"), "ix_orders_status"),
        (IndexCandidate.of("public", "orders", "status", "total"), "ix_orders_status_total"),
        (IndexCandidate.of("audit", "events", "type"), "ix_events_type"),
        # Expressions and directions leave the convention's tokens empty: the advisor's name.
        (
            IndexCandidate.of("public", "orders", "status", "placed_at DESC"),
            "ix_orders_status_placed_at",
        ),
        (IndexCandidate.of("public", "orders", "lower(status)"), "ix_orders_lower_status"),
    ],
)
def test_model_index_names_follow_the_naming_convention(
    shop: tuple[ModelMap, ModuleType], candidate: IndexCandidate, name: str
) -> None:
    models, _ = shop
    assert model_index_suggestion(candidate, _mapped(models, candidate)).name == name


def test_model_suggestion_uses_attribute_names_and_keeps_table_args(
    shop: tuple[ModelMap, ModuleType],
) -> None:
    models, _ = shop
    renamed = model_index_suggestion(
        IndexCandidate.of("audit", "events", "type"),
        _mapped(models, IndexCandidate.of("audit", "events", "type")),
    )
    assert renamed.code == 'kind: Mapped[str] = mapped_column("type", String(40), index=True)'
    assert renamed.after_class == 'Index("ix_events_type", AuditEvent.kind)'
    candidate = IndexCandidate.of("public", "customers", "country", "lower(email)")
    expression = model_index_suggestion(candidate, _mapped(models, candidate))
    assert expression.after_class is not None
    assert "func.lower(Customer.email_address)" in expression.after_class
    candidate = IndexCandidate.of("public", "orders", "status", "placed_at DESC")
    orders = model_index_suggestion(candidate, _mapped(models, candidate))
    assert orders.code == (
        "__table_args__ = (\n"
        '    Index("ix_orders_status_placed", "status", "placed_at"),\n'
        '    Index("ix_orders_status_placed_at", "status", text(\'placed_at DESC\')),\n'
        '    {"comment": "one checkout"},\n'
        ")"
    )
