"""In-app capture: record what a SQLAlchemy engine runs, to a JSONL file explainer reads.

Server logs say what ran; only the application knows *where* it ran from (the line that
issued it), for which request, and how long it waited for a pooled connection. This
module listens to a SQLAlchemy 2 engine's events and writes one JSON object per statement
and per pool event (the "explainer-capture" format, version 1, docs/capture.md), read by
:mod:`explainer.capture.app_jsonl` like any other log.

What is hooked, and why:

- ``before_cursor_execute`` / ``after_cursor_execute`` / ``handle_error`` (engine
  events): the statement as sent to the driver, its values, its duration, its error;
- ``begin`` / ``commit`` / ``rollback``: transaction ids, so the reader knows which
  statements shared a transaction;
- the pool's ``connect`` / ``checkout`` / ``checkin`` / ``close`` / ``invalidate``
  events, and the pool's public :meth:`Pool.connect` wrapped on the pool instance (there is
  no "checkout requested" event): the time a checkout waited, and pool timeouts.

It costs little on the statement path: a sampled-out statement costs one ``random()``; a
recorded one two clock reads, a call-site walk whose per-function verdicts are cached, and
a tuple queued. The rest is done elsewhere, one module each: request ids
(:mod:`~explainer.capture.hook_requests`, re-exported here), call sites
(:mod:`~explainer.capture.hook_sites`), values as PostgreSQL text
(:mod:`~explainer.capture.hook_values`), the pool's settings and counts
(:mod:`~explainer.capture.hook_pool`) and the thread that writes the file
(:mod:`~explainer.capture.hook_writer`). Only the standard library and SQLAlchemy are
used, and SQLAlchemy only once :func:`install` is called, so the request-id helpers cost
an application nothing.
"""

from __future__ import annotations

import atexit
import itertools
import os
import random
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from explainer.capture.hook_pool import checkout_started, pool_config, pool_counts
from explainer.capture.hook_requests import (
    RequestIdASGIMiddleware,
    RequestIdWSGIMiddleware,
    new_request_id,
    request,
    request_id,
)
from explainer.capture.hook_sites import CallSites, Site, site_json
from explainer.capture.hook_values import encode, error_text, parameters_json, quote, timestamp
from explainer.capture.hook_writer import FLUSH_SECONDS as FLUSH_SECONDS
from explainer.capture.hook_writer import Render as Render
from explainer.capture.hook_writer import Writer
from explainer.errors import ExplainerError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, ExceptionContext, ExecutionContext
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.pool import ConnectionPoolEntry, Pool, PoolProxiedConnection

__all__ = [
    "Capture",
    "CaptureError",
    "RequestIdASGIMiddleware",
    "RequestIdWSGIMiddleware",
    "capturing",
    "install",
    "new_request_id",
    "request",
    "request_id",
]

FORMAT_VERSION = 1

_connection_numbers = itertools.count(1)
_SQL_CACHE_SIZE = 4096

_Writer = Writer  # the name the tests tune its thresholds through


class CaptureError(ExplainerError, ValueError):
    """The capture cannot be installed as asked (a bad option, a file it cannot write)."""


# What the statement path queues: wall clock start, ms, SQL, parameters, executemany,
# connection, transaction, request, call site, error.
_Statement = tuple[
    float,
    float,
    str,
    object,
    bool,
    str,
    str | None,
    str | None,
    Site | None,
    str | None,
]


class _ConnectionState:
    """What the capture knows of one DBAPI connection (kept in the pool entry's ``info``,
    which SQLAlchemy clears when the DBAPI connection is replaced)."""

    __slots__ = ("id", "started", "transactions", "tx", "wall")

    def __init__(self, id: str) -> None:
        self.id = id
        self.tx: str | None = None
        self.transactions = 0
        self.started: float | None = None
        self.wall = 0.0


class Capture:
    """A running capture (what :func:`install` returns): ``remove()`` it to stop."""

    def __init__(
        self,
        engine: Engine,
        path: str,
        *,
        sample: float,
        call_sites: bool,
        redact: bool,
        skip: Sequence[str],
    ) -> None:
        from sqlalchemy import event, exc
        from sqlalchemy.engine.interfaces import ExecuteStyle

        self.engine = engine
        self.path = path
        self.sample = sample
        self.redact = redact
        self._failures = 0
        self._removed = False
        self._event = event
        self._timeout_error = exc.TimeoutError
        self._insertmanyvalues = ExecuteStyle.INSERTMANYVALUES
        self._key = f"explainer.capture.{id(self)}"
        self._sites = CallSites(skip) if call_sites else None
        dialect = engine.dialect
        self._paramstyle = str(dialect.paramstyle)
        self._paramstyle_json = quote(self._paramstyle)
        self._sql_json: dict[str, str] = {}
        self._header_fields: dict[str, object] = {
            "dialect": dialect.name,
            "driver": dialect.driver,
            "paramstyle": self._paramstyle,
            "pool": pool_config(engine.pool),
            "sample": sample,
        }
        try:
            self._writer = Writer(path, self._header, self._render)
        except OSError as error:
            raise CaptureError(
                f"cannot write the capture file {path}: {error.strerror or error}"
            ) from None
        self._pool = engine.pool
        self._wrapped: list[tuple[Pool, Callable[[], PoolProxiedConnection]]] = []
        self._listeners: list[tuple[object, str, Callable[..., object]]] = [
            (engine, "before_cursor_execute", self._before),
            (engine, "after_cursor_execute", self._after),
            (engine, "handle_error", self._error),
            (engine, "begin", self._begin),
            (engine, "commit", self._end),
            (engine, "rollback", self._end),
            (engine, "engine_disposed", self._disposed),
            (self._pool, "connect", self._connected),
            (self._pool, "checkout", self._checkout),
            (self._pool, "checkin", self._checkin),
            (self._pool, "close", self._closed),
            (self._pool, "invalidate", self._invalidated),
        ]
        for target, name, listener in self._listeners:
            event.listen(target, name, listener, retval=listener == self._before)
        self._wrap(engine.pool)
        ref = weakref.ref(self)
        os.register_at_fork(
            before=lambda: _call(ref, "_before_fork"),
            after_in_parent=lambda: _call(ref, "_after_fork_in_parent"),
            after_in_child=lambda: _call(ref, "_after_fork_in_child"),
        )
        atexit.register(self.close)

    # -- lifecycle -------------------------------------------------------------------

    def flush(self) -> None:
        """Write the buffered records now (they are also written every second)."""
        self._writer.flush()

    def remove(self) -> None:
        """Stop capturing: detach every listener, write what is buffered, close the file."""
        if self._removed:
            return
        self._removed = True
        for target, name, listener in self._listeners:
            if self._event.contains(target, name, listener):
                self._event.remove(target, name, listener)
        for pool, connect in self._wrapped:
            if pool.__dict__.get("connect") is connect:
                del pool.__dict__["connect"]
        self._wrapped.clear()
        self._writer.close()
        atexit.unregister(self.close)

    close = remove

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def _header(self) -> dict[str, object]:
        return {
            "explainer_capture": FORMAT_VERSION,
            "ts": timestamp(time.time()),
            "pid": os.getpid(),
            **self._header_fields,
        }

    def _before_fork(self) -> None:
        self._writer.before_fork()

    def _after_fork_in_parent(self) -> None:
        self._writer.after_fork_in_parent()

    def _after_fork_in_child(self) -> None:
        self._writer.after_fork_in_child()

    @property
    def failures(self) -> int:
        """Events the capture could not record (a bug: the first one is also warned of)."""
        return self._failures + self._writer.unrendered

    def _failed(self, error: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            warnings.warn(
                f"explainer capture: an event was not recorded ({error_text(error)}); "
                "later failures are only counted (Capture.failures)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _state(self, info: dict[Any, Any]) -> _ConnectionState:
        state: _ConnectionState | None = info.get(self._key)
        if state is None:
            state = info[self._key] = _ConnectionState(f"{os.getpid()}.{next(_connection_numbers)}")
        return state

    # -- statements ------------------------------------------------------------------

    def _before(
        self,
        conn: Connection,
        cursor: object,
        statement: str,
        parameters: object,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> tuple[str, object]:
        """Listened to with ``retval=True``, so SQLAlchemy calls it without a wrapper of
        its own; it hands the statement and its parameters back as they came."""
        if self.sample >= 1.0 or random.random() < self.sample:
            try:
                info = conn.info
                state = info.get(self._key) or self._state(info)
                state.wall = time.time()
                state.started = time.perf_counter()
            except Exception as error:  # never break the application
                self._failed(error)
        return statement, parameters

    def _after(
        self,
        conn: Connection,
        cursor: object,
        statement: str,
        parameters: object,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        try:
            state: _ConnectionState | None = conn.info.get(self._key)
            if state is not None and state.started is not None:
                self._statement(state, statement, parameters, context, executemany, None)
        except Exception as error:
            self._failed(error)

    def _error(self, context: ExceptionContext) -> None:
        try:
            conn = context.connection
            if conn is None or context.statement is None or conn.invalidated:
                return
            state: _ConnectionState | None = conn.info.get(self._key)
            if state is not None and state.started is not None:
                execution = context.execution_context
                self._statement(
                    state,
                    context.statement,
                    context.parameters,
                    execution,
                    bool(execution is not None and execution.executemany),
                    error_text(context.original_exception),
                )
        except Exception as error:
            self._failed(error)

    def _statement(
        self,
        state: _ConnectionState,
        statement: str,
        parameters: object,
        context: ExecutionContext | None,
        executemany: bool,
        error: str | None,
    ) -> None:
        ms = (time.perf_counter() - state.started) * 1000.0  # type: ignore[operator]
        state.started = None
        # insertmanyvalues batches say executemany but send one (flattened) parameter set.
        many = executemany and (
            context is None or context.execute_style is not self._insertmanyvalues
        )
        sites = self._sites
        # What is known only now (the stack, the request, the transaction) is taken now;
        # the rest is rendered by the writer's thread (see _Writer).
        self._writer.put(
            (
                state.wall,
                ms,
                statement,
                parameters,
                many,
                state.id,
                state.tx,
                request_id.get(),
                None if sites is None else sites.find(sys._getframe(1)),
                error,
            )
        )

    def _render(self, item: _Statement) -> str:
        """A statement's JSON line, written out by hand rather than encoded from a dict:
        three times faster (the SQL text's escape is cached: SQLAlchemy hands the same
        compiled string to every execution of a statement)."""
        wall, ms, statement, parameters, many, conn, tx, request, site, error = item
        sql = self._sql_json.get(statement)
        if sql is None:
            if len(self._sql_json) >= _SQL_CACHE_SIZE:
                self._sql_json.clear()
            sql = self._sql_json[statement] = quote(statement)
        line = (
            f'{{"type":"statement","ts":"{timestamp(wall)}","ms":{round(ms, 3)!r},'
            f'"sql":{sql},"params":{parameters_json(parameters, many, self.redact)},'
            f'"many":{"true" if many else "false"},"paramstyle":{self._paramstyle_json},'
            f'"redacted":{"true" if self.redact else "false"},"conn":{quote(conn)},'
            f'"tx":{"null" if tx is None else quote(tx)},'
            f'"request":{"null" if request is None else quote(request)},'
            f'"site":{site_json(site)}'
        )
        if error is not None:
            line += f',"error":{quote(error)}'
        return line + "}\n"

    # -- transactions ----------------------------------------------------------------

    def _begin(self, conn: Connection) -> None:
        try:
            state = self._state(conn.info)
            state.transactions += 1
            dbapi = conn.connection.dbapi_connection
            autocommit = getattr(dbapi, "autocommit", False) is True
            state.tx = None if autocommit else f"{state.id}#{state.transactions}"
        except Exception as error:
            self._failed(error)

    def _end(self, conn: Connection) -> None:
        try:
            if not conn.invalidated:
                state: _ConnectionState | None = conn.info.get(self._key)
                if state is not None:
                    state.tx = None
        except Exception as error:
            self._failed(error)

    # -- the pool --------------------------------------------------------------------

    def _wrap(self, pool: Pool) -> None:
        """Time :meth:`Pool.connect`, the one door to a checkout, on this pool instance."""
        original = pool.connect
        ref = weakref.ref(self)

        def connect() -> PoolProxiedConnection:
            token = checkout_started.set(time.perf_counter())
            try:
                return original()
            except Exception as error:
                capture = ref()
                if capture is not None and isinstance(error, capture._timeout_error):
                    capture._pool_event("timeout", None, pool)
                raise
            finally:
                checkout_started.reset(token)

        pool.connect = connect  # type: ignore[method-assign]
        self._wrapped.append((pool, connect))

    def _disposed(self, engine: Engine) -> None:
        # dispose() replaces the pool: its listeners move to the new one, the wrapper not.
        if not self._removed:
            self._wrap(engine.pool)

    def _pool_event(
        self,
        name: str,
        entry: ConnectionPoolEntry | None,
        pool: Pool | None = None,
        *,
        returning: bool = False,
    ) -> None:
        try:
            conn = None if entry is None else self._state(entry.info).id
            started = checkout_started.get()
            waited = (
                round((time.perf_counter() - started) * 1000.0, 3)
                if started is not None and name in ("checkout", "timeout")
                else None
            )
            checked_out, overflow = (
                pool_counts(pool or self.engine.pool, returning)
                if name in ("connect", "checkout", "checkin", "timeout")
                else (None, None)
            )
            self._writer.put(
                encode(
                    {
                        "type": "pool",
                        "ts": timestamp(time.time()),
                        "event": name,
                        "conn": conn,
                        "wait_ms": waited,
                        "checked_out": checked_out,
                        "overflow": overflow,
                        "request": request_id.get(),
                    }
                )
                + "\n"
            )
        except Exception as error:
            self._failed(error)

    def _connected(self, dbapi_connection: object, entry: ConnectionPoolEntry) -> None:
        self._pool_event("connect", entry)

    def _checkout(
        self, dbapi_connection: object, entry: ConnectionPoolEntry, proxy: object
    ) -> None:
        self._pool_event("checkout", entry)

    def _checkin(self, dbapi_connection: object, entry: ConnectionPoolEntry) -> None:
        state: _ConnectionState | None = entry.info.get(self._key)
        if state is not None:
            state.tx = None  # whatever was open, the pool's reset rolled it back
        self._pool_event("checkin", entry, returning=True)

    def _closed(self, dbapi_connection: object, entry: ConnectionPoolEntry) -> None:
        self._pool_event("close", entry)

    def _invalidated(
        self, dbapi_connection: object, entry: ConnectionPoolEntry, error: object
    ) -> None:
        self._pool_event("invalidate", entry)


def _call(ref: weakref.ref[Capture], method: str) -> None:
    capture = ref()
    if capture is not None and not capture._removed:
        getattr(capture, method)()


# -- the public entry points ------------------------------------------------------------


def install(
    engine: Engine | AsyncEngine,
    path: str | os.PathLike[str],
    *,
    sample: float = 1.0,
    call_sites: bool = True,
    redact: bool = False,
    skip: Sequence[str] = (),
) -> Capture:
    """Record every statement ``engine`` runs, and its pool's events, to the JSONL ``path``.

    ``sample`` is the share of statements recorded (chosen at random per statement; 1.0
    records all, deterministically); pool events are always recorded. ``call_sites``
    looks up the application line of each statement. ``redact`` writes no parameter
    values (the statements then cannot be replayed). ``skip`` names more modules
    (``"myapp.db"``) or folders whose frames are not call sites (your own query helpers).
    An :class:`~sqlalchemy.ext.asyncio.AsyncEngine` is captured through its
    ``sync_engine``. Appends to ``path``: several processes may share one file.
    """
    if not 0.0 <= sample <= 1.0:
        raise CaptureError(f"sample must be between 0 and 1, not {sample!r}")
    if isinstance(skip, str):
        skip = (skip,)
    sync_engine = cast("Engine", getattr(engine, "sync_engine", engine))
    return Capture(
        sync_engine,
        os.fspath(path),
        sample=float(sample),
        call_sites=call_sites,
        redact=redact,
        skip=tuple(skip),
    )


@contextmanager
def capturing(
    engine: Engine | AsyncEngine, path: str | os.PathLike[str], **options: Any
) -> Iterator[Capture]:
    """:func:`install` for the length of a ``with`` block (tests, one-off scripts)."""
    capture = install(engine, path, **options)
    try:
        yield capture
    finally:
        capture.remove()
