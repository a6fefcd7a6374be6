"""Suggestions as code: the SQLAlchemy declarations must compile to the suggested SQL."""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex

from explainer.advise.ddl import create_index_sql, quote_ident
from explainer.advise.model import IndexCandidate, index_name
from explainer.render.sql import index_sql
from explainer.render.sqlalchemy import class_name, index_declaration, table_args_declaration


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
