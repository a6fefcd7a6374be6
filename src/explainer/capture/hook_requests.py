"""Request ids for the in-app capture (:mod:`explainer.capture.hook`).

Only the application knows which request a statement served: the capture writes the
value of :data:`request_id` on every record made while it is set. The id lives in a
context variable so that it follows each thread and each asyncio task, and two pure
Python middlewares (no web framework imported) set one per request. This module imports
neither SQLAlchemy nor the rest of the capture, so the helpers cost an application
nothing until :func:`~explainer.capture.hook.install` is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = [
    "RequestIdASGIMiddleware",
    "RequestIdWSGIMiddleware",
    "new_request_id",
    "request",
    "request_id",
]

request_id: ContextVar[str | None] = ContextVar("explainer_request_id", default=None)
"""The id of the request being served, written on every record made while it is set.

Set it with :func:`request`, or let :class:`RequestIdWSGIMiddleware` /
:class:`RequestIdASGIMiddleware` set a fresh one per request. A context variable follows
each thread and each asyncio task (SQLAlchemy's asyncio greenlets share their task's), so
concurrent requests never see each other's id."""


def new_request_id() -> str:
    """A fresh request id: 16 random hex digits, unique across processes and restarts."""
    return os.urandom(8).hex()


@contextmanager
def request(id: str | None = None) -> Iterator[str]:
    """Mark the statements run inside the block as one request's (a fresh id when None)."""
    value = new_request_id() if id is None else id
    token = request_id.set(value)
    try:
        yield value
    finally:
        request_id.reset(token)


_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestIdWSGIMiddleware:
    """Give each WSGI request an id (``app.wsgi_app = RequestIdWSGIMiddleware(app.wsgi_app)``).

    With ``header`` (e.g. ``"X-Request-ID"``) an id the request carries is used instead of
    a fresh one, so the capture's ids match the proxy's logs. The id stays set while the
    response body is iterated, where lazy responses still run queries.
    """

    def __init__(self, app: _WSGIApp, header: str | None = None) -> None:
        self.app = app
        self._environ_key = None if header is None else "HTTP_" + header.upper().replace("-", "_")

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        given = environ.get(self._environ_key) if self._environ_key else None
        value = _clean_id(given) or new_request_id()
        previous = request_id.get()
        request_id.set(value)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            request_id.set(previous)
            raise
        return _RequestBody(body, previous)


class _RequestBody:
    """A WSGI response that puts the previous request id back when the server closes it."""

    def __init__(self, body: Iterable[bytes], previous: str | None) -> None:
        self._body = body
        self._previous = previous

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            request_id.set(self._previous)


_ASGIApp = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Any]


class RequestIdASGIMiddleware:
    """Give each ASGI request an id (FastAPI: ``app.add_middleware(RequestIdASGIMiddleware)``).

    HTTP and WebSocket scopes get a fresh id (or, with ``header``, the one the request
    carries); lifespan events pass through untouched.
    """

    def __init__(self, app: _ASGIApp, header: str | None = None) -> None:
        self.app = app
        self._header = None if header is None else header.lower().encode("latin-1")

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = None
        if self._header is not None:
            for name, value in scope.get("headers", ()):
                if name.lower() == self._header:
                    given = value.decode("latin-1")
                    break
        with request(_clean_id(given) or new_request_id()):
            await self.app(scope, receive, send)


def _clean_id(value: object) -> str | None:
    """An incoming id as a short printable string, or None: it ends up in every record."""
    if not isinstance(value, str):
        return None
    value = value.strip()[:128]
    return value if value and value.isprintable() else None
