"""The in-app capture (explainer.capture.install) against a real PostgreSQL.

Every test runs a real engine (psycopg 3, sync and asyncio) on the suite's server and
reads back the JSONL file the hook wrote: the statements, their values as PostgreSQL
text, their connection, transaction, request and application line, and the pool events.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from explainer.capture import capturing, hook, install, read_input, request, request_id
from explainer.capture.hook import (
    CaptureError,
    RequestIdASGIMiddleware,
    RequestIdWSGIMiddleware,
)

THIS_FILE = Path(__file__).resolve()


def _site_file() -> str:
    """This file as the hook writes it: relative to the current directory when under it."""
    cwd = os.getcwd() + os.sep
    path = str(THIS_FILE)
    return path[len(cwd) :] if path.startswith(cwd) else path


def line_of(marker: str) -> int:
    """The line of this file that carries ``marker`` (a comment), so no number is hard-coded."""
    lines = [
        number
        for number, line in enumerate(THIS_FILE.read_text().splitlines(), start=1)
        if line.rstrip().endswith(f"# {marker}")
    ]
    assert len(lines) == 1, marker
    return lines[0]


def site(marker: str, function: str) -> dict[str, object]:
    return {"file": _site_file(), "line": line_of(marker), "function": function}


def url(dsn: str, driver: str) -> URL:
    params = conninfo_to_dict(dsn)
    return URL.create(
        f"postgresql+{driver}",
        username=params.get("user"),
        password=params.get("password"),
        host=params.get("host"),
        port=int(params["port"]) if params.get("port") else None,
        database=params.get("dbname"),
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def statements(path: Path) -> list[dict[str, Any]]:
    return [r for r in records(path) if r.get("type") == "statement"]


def pool_events(path: Path) -> list[dict[str, Any]]:
    return [r for r in records(path) if r.get("type") == "pool"]


metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("doc", JSONB),
)


@pytest.fixture(scope="module")
def sync_url(db_dsn: str) -> Iterator[URL]:
    engine = sqlalchemy.create_engine(url(db_dsn, "psycopg"))
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(items.insert(), [{"name": f"item{i}", "doc": {"n": i}} for i in range(1, 6)])
    engine.dispose()
    yield url(db_dsn, "psycopg")


@pytest.fixture
def engine(sync_url: URL) -> Iterator[Engine]:
    engine = sqlalchemy.create_engine(sync_url)
    yield engine
    engine.dispose()


# -- statements ---------------------------------------------------------------------------


def test_a_statement_is_recorded_with_its_values_as_postgresql_text(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "capture.jsonl"
    values = {
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "price": decimal.Decimal("12.50"),
        "key": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "raw": b"\x00\xff",
        "flag": True,
        "tags": ["a", None, 'say "hi"'],
        "missing": None,
        "n": 42,
    }
    query = text(
        "SELECT CAST(:at AS timestamptz), CAST(:day AS date), CAST(:price AS numeric), "
        "CAST(:key AS uuid), CAST(:raw AS bytea), CAST(:flag AS boolean), "
        "CAST(:tags AS text[]), CAST(:missing AS text), CAST(:n AS int)"
    )
    with capturing(engine, path), engine.connect() as conn:
        row = conn.execute(query, values).one()  # values-site
    assert row[8] == 42

    header, *rest = records(path)
    assert header["explainer_capture"] == 1
    assert header["pid"] == os.getpid()
    assert (header["dialect"], header["driver"], header["paramstyle"]) == (
        "postgresql",
        "psycopg",
        "pyformat",
    )
    assert header["pool"] == {
        "class": "QueuePool",
        "size": 5,
        "max_overflow": 10,
        "timeout": 30.0,
        "recycle": -1,
        "pre_ping": False,
    }
    assert header["sample"] == 1.0
    [record] = [r for r in rest if r["type"] == "statement"]
    assert record["params"] == {
        "at": "2026-01-02 03:04:05.600000+00:00",
        "day": "2026-01-02",
        "price": "12.50",
        "key": "12345678-1234-5678-1234-567812345678",
        "raw": "\\x00ff",
        "flag": "true",
        "tags": '{"a",NULL,"say \\"hi\\""}',
        "missing": None,
        "n": "42",
    }
    assert record["sql"].startswith("SELECT CAST(%(at)s AS timestamptz)")
    assert record["many"] is False
    assert record["redacted"] is False
    assert record["paramstyle"] == "pyformat"
    assert record["request"] is None
    assert record["site"] == site(
        "values-site", "test_a_statement_is_recorded_with_its_values_as_postgresql_text"
    )
    assert isinstance(record["ms"], float) and record["ms"] > 0
    started = datetime.datetime.fromisoformat(record["ts"])
    assert started.utcoffset() == datetime.timedelta(0)
    assert record["conn"].startswith(f"{os.getpid()}.")
    assert record["tx"] == f"{record['conn']}#1"


def test_the_values_replay_as_the_server_read_them(engine: Engine, tmp_path: Path) -> None:
    """Each text value, cast back by PostgreSQL, is the value the application sent."""
    path = tmp_path / "capture.jsonl"
    at = datetime.datetime(
        2026, 6, 1, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    with capturing(engine, path), engine.connect() as conn:
        sent = conn.execute(
            text("SELECT CAST(:at AS timestamptz), CAST(:gap AS interval), CAST(:doc AS jsonb)"),
            {"at": at, "gap": datetime.timedelta(days=1, seconds=5), "doc": '{"k": [1, 2]}'},
        ).one()
    [record] = statements(path)
    with engine.connect() as conn:
        replayed = conn.execute(
            text("SELECT CAST(:at AS timestamptz), CAST(:gap AS interval), CAST(:doc AS jsonb)"),
            record["params"],
        ).one()
    assert replayed == sent
    assert record["params"]["gap"] == "1 days 5 seconds 0 microseconds"


def test_executemany_records_every_parameter_set(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    rename = items.update().where(items.c.id == bindparam("item_id")).values(name=bindparam("new"))
    with capturing(engine, path), engine.begin() as conn:
        conn.execute(rename, [{"item_id": 1, "new": "first"}, {"item_id": 2, "new": "second"}])
        conn.execute(rename, [{"item_id": 1, "new": "item1"}, {"item_id": 2, "new": "item2"}])
    first, second = (r for r in statements(path) if r["sql"].startswith("UPDATE"))
    assert first["many"] is True
    assert first["params"] == [{"new": "first", "item_id": "1"}, {"new": "second", "item_id": "2"}]
    assert second["params"] == [{"new": "item1", "item_id": "1"}, {"new": "item2", "item_id": "2"}]


def test_a_batched_insert_is_one_parameter_set(engine: Engine, tmp_path: Path) -> None:
    """insertmanyvalues (an INSERT..RETURNING of several rows) sends one INSERT with every
    row's values: one parameter set, not "many"."""
    path = tmp_path / "capture.jsonl"
    with capturing(engine, path), engine.connect() as conn:
        rows = [{"name": "x1", "doc": {"a": 1}}, {"name": "x2", "doc": None}]
        conn.execute(items.insert().returning(items.c.id), rows)
        conn.rollback()
    [insert] = [r for r in statements(path) if r["sql"].startswith("INSERT")]
    assert insert["many"] is False
    assert sorted(insert["params"].items()) == [
        ("doc__0", '{"a": 1}'),
        ("doc__1", "null"),  # JSON's null: SQLAlchemy's JSON type sends None so
        ("name__0", "x1"),
        ("name__1", "x2"),
    ]


def test_a_failing_statement_is_recorded_with_its_error(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with capturing(engine, path), engine.connect() as conn:
        with pytest.raises(sqlalchemy.exc.ProgrammingError):
            conn.execute(text("SELECT * FROM no_such_table WHERE id = :id"), {"id": 7})  # fails
        conn.rollback()
        conn.execute(text("SELECT 1"))
    failed, after = statements(path)
    assert failed["error"] == 'UndefinedTable: relation "no_such_table" does not exist'
    assert failed["params"] == {"id": "7"}
    assert failed["site"] == site("fails", "test_a_failing_statement_is_recorded_with_its_error")
    assert "error" not in after
    assert failed["tx"] != after["tx"]  # the failed transaction was rolled back


def test_redaction_keeps_the_shape_and_drops_the_values(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with capturing(engine, path, redact=True), engine.connect() as conn:
        conn.execute(text("SELECT :secret, :other"), {"secret": "hunter2", "other": 5})
    [record] = statements(path)
    assert record["redacted"] is True
    assert record["params"] == {"secret": None, "other": None}
    assert "hunter2" not in path.read_text()


def test_sampling_records_a_share_of_the_statements(engine: Engine, tmp_path: Path) -> None:
    none_path, half_path, all_path = (tmp_path / f"{n}.jsonl" for n in ("none", "half", "all"))
    with (
        capturing(engine, none_path, sample=0.0),
        capturing(engine, half_path, sample=0.5),
        capturing(engine, all_path),
        engine.connect() as conn,
    ):
        for i in range(400):
            conn.execute(text("SELECT :i"), {"i": i})
    assert len(statements(all_path)) == 400
    assert [r["params"]["i"] for r in statements(all_path)] == [str(i) for i in range(400)]
    assert statements(none_path) == []
    assert [r["event"] for r in pool_events(none_path)] == ["connect", "checkout", "checkin"]
    # Binomial(400, 0.5): outside 100..300 with a probability under 1e-20.
    assert 100 < len(statements(half_path)) < 300
    assert records(half_path)[0]["sample"] == 0.5


def test_sample_outside_zero_to_one_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"sample must be between 0 and 1, not 1\.5"):
        install(engine, tmp_path / "x.jsonl", sample=1.5)


def test_an_unwritable_path_is_one_clear_error(engine: Engine, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir.jsonl"
    with pytest.raises(CaptureError, match=f"cannot write the capture file {missing}: "):
        install(engine, missing)


# -- transactions and connections ----------------------------------------------------------


def test_transaction_ids_change_at_commit_and_rollback(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with capturing(engine, path), engine.connect() as conn:
        conn.execute(text("SELECT 'a'"))
        conn.execute(text("SELECT 'b'"))
        conn.commit()
        conn.execute(text("SELECT 'c'"))
        conn.rollback()
        conn.execute(text("SELECT 'd'"))
        conn.commit()
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(text("SELECT 'e'"))
    txs = {r["sql"][-2]: r["tx"] for r in statements(path)}
    conn_id = statements(path)[0]["conn"]
    assert txs == {
        "a": f"{conn_id}#1",
        "b": f"{conn_id}#1",
        "c": f"{conn_id}#2",
        "d": f"{conn_id}#3",
        "e": None,
    }
    assert {r["conn"] for r in statements(path)} == {conn_id}


def test_connections_are_told_apart_and_pool_events_recorded(sync_url: URL, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    engine = sqlalchemy.create_engine(sync_url, pool_size=1, max_overflow=1)
    try:
        with capturing(engine, path):
            first = engine.connect()
            second = engine.connect()  # an overflow connection
            first.execute(text("SELECT 1"))
            second.execute(text("SELECT 2"))
            second.close()  # the queue has room: kept
            first.close()  # the queue is full: the overflow connection is closed
    finally:
        engine.dispose()
    one, two = (r["conn"] for r in statements(path))
    assert one != two
    events = [(r["event"], r["conn"], r["checked_out"], r["overflow"]) for r in pool_events(path)]
    assert events == [
        ("connect", one, 1, 0),
        ("checkout", one, 1, 0),
        ("connect", two, 2, 1),
        ("checkout", two, 2, 1),
        ("checkin", two, 1, 1),
        ("checkin", one, 0, 0),
        ("close", one, None, None),
    ]
    checkouts = [r for r in pool_events(path) if r["event"] == "checkout"]
    assert all(isinstance(r["wait_ms"], float) for r in checkouts)


def test_a_pool_timeout_is_recorded(sync_url: URL, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    engine = sqlalchemy.create_engine(sync_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with capturing(engine, path), engine.connect() as held:
            held.execute(text("SELECT 1"))
            with request("busy"), pytest.raises(sqlalchemy.exc.TimeoutError):
                engine.connect()
    finally:
        engine.dispose()
    [timeout] = [r for r in pool_events(path) if r["event"] == "timeout"]
    assert timeout["conn"] is None
    assert timeout["request"] == "busy"
    assert (timeout["checked_out"], timeout["overflow"]) == (1, 0)
    assert timeout["wait_ms"] >= 180  # it waited (about) the whole pool_timeout


def test_dispose_keeps_capturing_and_remove_stops(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    capture = install(engine, path)
    with engine.connect() as conn:
        conn.execute(text("SELECT 'before'"))
    engine.dispose()  # a new pool: listeners move with it, the checkout timer is put back
    with engine.connect() as conn:
        conn.execute(text("SELECT 'after'"))
    capture.remove()
    with engine.connect() as conn:
        conn.execute(text("SELECT 'removed'"))
    assert [r["sql"] for r in statements(path)] == ["SELECT 'before'", "SELECT 'after'"]
    events = [r["event"] for r in pool_events(path)]
    assert events == ["connect", "checkout", "checkin", "close", "connect", "checkout", "checkin"]
    assert [r["wait_ms"] is not None for r in pool_events(path) if r["event"] == "checkout"] == [
        True,
        True,
    ]


def test_threads_record_whole_lines_with_their_own_requests(
    sync_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four threads at once; tiny queue limits, so both the flusher's early wake-up and the
    recording threads' own writes (past the limit) happen, and no record is lost or cut."""
    monkeypatch.setattr(hook._Writer, "WAKE_AT", 3)
    monkeypatch.setattr(hook._Writer, "WRITE_AT", 7)
    path = tmp_path / "capture.jsonl"
    engine = sqlalchemy.create_engine(sync_url, pool_size=4)

    def work(name: str) -> None:
        with request(name), engine.connect() as conn:
            for i in range(150):
                conn.execute(text("SELECT :who, :i"), {"who": name, "i": i})

    try:
        with capturing(engine, path):
            threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        engine.dispose()
    recorded = statements(path)  # every line parses: none was cut or interleaved
    assert len(recorded) == 600
    for name in ("t0", "t1", "t2", "t3"):
        mine = [r for r in recorded if r["request"] == name]
        assert [r["params"] for r in mine] == [{"who": name, "i": str(i)} for i in range(150)]
        assert len({r["conn"] for r in mine}) == 1


# -- call sites -----------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


@pytest.fixture(scope="module")
def library(sync_url: URL) -> Iterator[URL]:
    engine = sqlalchemy.create_engine(sync_url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Author(name=f"a{i}", books=[Book(title=f"b{i}")]) for i in range(3)])
        session.commit()
    engine.dispose()
    yield sync_url


def test_the_call_site_of_an_orm_lazy_load_is_the_line_that_touched_it(
    library: URL, tmp_path: Path
) -> None:
    path = tmp_path / "capture.jsonl"
    engine = sqlalchemy.create_engine(library)
    try:
        with capturing(engine, path), Session(engine) as session:
            authors = session.scalars(select(Author).order_by(Author.id)).all()  # orm-query
            titles = [a.books[0].title for a in authors]  # lazy-load
    finally:
        engine.dispose()
    assert titles == ["b0", "b1", "b2"]
    name = "test_the_call_site_of_an_orm_lazy_load_is_the_line_that_touched_it"
    assert [r["site"] for r in statements(path)] == [
        site("orm-query", name),
        site("lazy-load", name),
        site("lazy-load", name),
        site("lazy-load", name),
    ]


def test_skip_moves_the_call_site_out_of_the_applications_own_helpers(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpers = tmp_path / "myhelpers.py"
    helpers.write_text(
        textwrap.dedent(
            """
            from sqlalchemy import text

            def fetch_one(conn, sql):
                return conn.execute(text(sql)).scalar_one()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import myhelpers  # type: ignore[import-not-found]

    plain, skipping = tmp_path / "plain.jsonl", tmp_path / "skip.jsonl"
    with (
        capturing(engine, plain),
        capturing(engine, skipping, skip=("myhelpers",)),
        engine.connect() as conn,
    ):
        assert myhelpers.fetch_one(conn, "SELECT 3") == 3  # via-helper
    [in_helper] = statements(plain)
    assert in_helper["site"] == {"file": str(helpers), "line": 5, "function": "fetch_one"}
    [skipped] = statements(skipping)
    name = "test_skip_moves_the_call_site_out_of_the_applications_own_helpers"
    assert skipped["site"] == site("via-helper", name)


def test_call_sites_can_be_turned_off(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with capturing(engine, path, call_sites=False), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    [record] = statements(path)
    assert record["site"] is None


# -- asyncio ------------------------------------------------------------------------------


def test_async_engine_with_a_request_id_per_task(sync_url: URL, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    async_url = sync_url.set(drivername="postgresql+psycopg_async")

    async def serve(engine: Any, name: str) -> None:
        with request(f"req-{name}"):
            async with engine.connect() as conn:
                for _ in range(3):
                    await conn.execute(text("SELECT :who"), {"who": name})  # async-site
                    await asyncio.sleep(0)

    async def main() -> None:
        engine = create_async_engine(async_url, pool_size=2)
        try:
            with capturing(engine, path):
                await asyncio.gather(serve(engine, "x"), serve(engine, "y"))
        finally:
            await engine.dispose()

    asyncio.run(main())
    recorded = statements(path)
    assert len(recorded) == 6
    for record in recorded:
        assert record["request"] == f"req-{record['params']['who']}"
        assert record["site"] == site("async-site", "serve")
    by_request = {r["request"]: r["conn"] for r in recorded}
    assert by_request["req-x"] != by_request["req-y"]
    assert records(path)[0]["pool"]["class"] == "AsyncAdaptedQueuePool"
    assert request_id.get() is None


# -- request ids and middlewares ------------------------------------------------------------


def test_request_sets_and_restores_the_id() -> None:
    assert request_id.get() is None
    with request("outer") as outer:
        assert outer == "outer"
        with request() as inner:
            assert len(inner) == 16 and int(inner, 16) >= 0
            assert request_id.get() == inner
        assert request_id.get() == "outer"
    assert request_id.get() is None


def test_wsgi_middleware_gives_each_request_an_id_kept_while_the_body_is_read() -> None:
    seen: list[str | None] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        seen.append(request_id.get())
        start_response("200 OK", [])
        yield b"body"
        seen.append(request_id.get())  # a lazy body: still the same request

    wrapped = RequestIdWSGIMiddleware(app, header="X-Request-ID")
    for environ in ({}, {}, {"HTTP_X_REQUEST_ID": "from-proxy"}):
        body = wrapped(environ, lambda *args: None)
        assert list(body) == [b"body"]
        body.close()  # type: ignore[attr-defined]
        assert request_id.get() is None
    first, first_again, second, second_again, third, third_again = seen
    assert first == first_again and second == second_again and third == third_again
    assert first != second and first is not None and second is not None
    assert third == "from-proxy"


def test_asgi_middleware_ids_http_requests_and_passes_lifespan_through() -> None:
    seen: list[tuple[str, str | None]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["type"], request_id.get()))

    wrapped = RequestIdASGIMiddleware(app, header="X-Request-ID")

    async def main() -> None:
        async def nothing() -> None:
            return None

        await wrapped({"type": "lifespan"}, nothing, nothing)
        await wrapped({"type": "http", "headers": []}, nothing, nothing)
        await wrapped({"type": "http", "headers": [(b"x-request-id", b"abc")]}, nothing, nothing)

    asyncio.run(main())
    (lifespan, none), (http, fresh), (http2, given) = seen
    assert (lifespan, none) == ("lifespan", None)
    assert http == http2 == "http"
    assert fresh is not None and len(fresh) == 16
    assert given == "abc"


def test_flask_sqlalchemy_app(sync_url: URL, tmp_path: Path) -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    path = tmp_path / "capture.jsonl"
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = sync_url.render_as_string(hide_password=False)
    db = SQLAlchemy(app)
    notes = db.Table("flask_notes", Column("id", Integer, primary_key=True), Column("body", String))

    @app.get("/notes/<int:upto>")
    def list_notes(upto: int) -> dict[str, object]:
        rows = db.session.execute(select(notes.c.body).where(notes.c.id <= upto)).all()  # view
        return {"bodies": [row.body for row in rows], "request": request_id.get()}

    app.wsgi_app = RequestIdWSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    with app.app_context():
        db.create_all()
        db.session.execute(notes.insert(), [{"body": "one"}, {"body": "two"}])
        db.session.commit()
        capture = install(db.engine, path)
    try:
        client = app.test_client()
        first = client.get("/notes/1").get_json()
        second = client.get("/notes/2").get_json()
    finally:
        capture.remove()
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
    assert first["bodies"] == ["one"] and second["bodies"] == ["one", "two"]
    assert first["request"] != second["request"]
    selects = [r for r in statements(path) if r["sql"].startswith("SELECT")]
    assert [(r["request"], r["params"]) for r in selects] == [
        (first["request"], {"id_1": "1"}),
        (second["request"], {"id_1": "2"}),
    ]
    assert all(r["site"] == site("view", "list_notes") for r in selects)
    checkouts = [r for r in pool_events(path) if r["event"] == "checkout"]
    assert [r["request"] for r in checkouts] == [first["request"], second["request"]]


def test_fastapi_app_with_an_async_engine(sync_url: URL, tmp_path: Path) -> None:
    import httpx
    from fastapi import FastAPI

    path = tmp_path / "capture.jsonl"
    engine = create_async_engine(sync_url.set(drivername="postgresql+psycopg_async"))
    app = FastAPI()
    app.add_middleware(RequestIdASGIMiddleware)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, object]:
        async with engine.connect() as conn:
            name = (
                await conn.execute(select(items.c.name).where(items.c.id == item_id))  # endpoint
            ).scalar_one()
        return {"name": name, "request": request_id.get()}

    async def main() -> list[dict[str, Any]]:
        try:
            with capturing(engine, path):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                    responses = await asyncio.gather(
                        *(client.get(f"/items/{n}") for n in (1, 2, 3))
                    )
        finally:
            await engine.dispose()
        return [response.json() for response in responses]

    bodies = asyncio.run(main())
    assert [b["name"] for b in bodies] == ["item1", "item2", "item3"]
    assert len({b["request"] for b in bodies}) == 3
    recorded = {r["request"]: r for r in statements(path)}
    for number, body in enumerate(bodies, start=1):
        record = recorded[body["request"]]
        assert record["params"] == {"id_1": str(number)}
        assert record["site"] == site("endpoint", "read_item")


# -- the file -------------------------------------------------------------------------------


def test_the_reader_reads_what_the_hook_wrote(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with capturing(engine, path), engine.connect() as conn, request("r-1"):
        conn.execute(select(items.c.name).where(items.c.id == 3))  # read-back
    queries, _ = read_input(str(path))
    [query] = queries
    assert query.sql.endswith("WHERE items.id = $1::INTEGER")
    assert query.parameters == ("3",)
    assert query.request == "r-1"
    assert query.location == f"{_site_file()}:{line_of('read-back')}"
    assert query.session == statements(path)[0]["conn"]


def test_records_left_in_the_buffer_are_written_at_exit(sync_url: URL, tmp_path: Path) -> None:
    """A process that never closes its capture loses nothing: atexit writes the buffer."""
    path = tmp_path / "capture.jsonl"
    script = textwrap.dedent(
        f"""
        import sqlalchemy
        from sqlalchemy import text
        from explainer.capture import install
        engine = sqlalchemy.create_engine({sync_url.render_as_string(hide_password=False)!r})
        install(engine, {str(path)!r})
        with engine.connect() as conn:
            for i in range(3):
                conn.execute(text("SELECT :i"), {{"i": i}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert [r["params"] for r in statements(path)] == [{"i": "0"}, {"i": "1"}, {"i": "2"}]


def test_a_forked_child_appends_its_own_header_and_lines(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    capture = install(engine, path)
    with engine.connect() as conn:
        conn.execute(text("SELECT 'parent'"))  # buffered, not yet written
    pid = os.fork()
    if pid == 0:  # the child: a fresh pool, one statement, its records, then out
        try:
            engine.dispose(close=False)
            with engine.connect() as conn:
                conn.execute(text("SELECT 'child'"))
            capture.close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    capture.close()
    lines = records(path)
    headers = [r["pid"] for r in lines if "explainer_capture" in r]
    assert sorted(headers) == sorted([os.getpid(), pid])
    said = {r["sql"]: r["conn"].split(".")[0] for r in lines if r.get("type") == "statement"}
    assert said == {"SELECT 'parent'": str(os.getpid()), "SELECT 'child'": str(pid)}
