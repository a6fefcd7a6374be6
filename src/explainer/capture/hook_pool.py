"""What the in-app capture (:mod:`explainer.capture.hook`) reads of a connection pool.

Pool advice needs the pool's settings (in the file's header) and, on each pool event,
how many connections were checked out and in overflow. ``QueuePool`` has public
``size()``, ``timeout()``, ``checkedout()`` and ``overflow()``; ``_max_overflow``,
``_recycle`` and ``_pre_ping`` have no public accessor and are read as attributes, so a
pool without them is recorded with nulls rather than refused. SQLAlchemy has no
"checkout requested" event: the capture times the pool's ``connect()`` and leaves the
start in :data:`checkout_started` for the checkout event it leads to.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.pool import Pool

__all__ = ["checkout_started", "pool_config", "pool_counts"]

checkout_started: ContextVar[float | None] = ContextVar("explainer_checkout_started", default=None)
"""When the wrapped ``Pool.connect`` started, for the checkout event it leads to."""


def pool_config(pool: Pool) -> dict[str, object] | None:
    """The pool's settings for the header; None for a pool that keeps no connection."""
    kind = type(pool).__name__
    if kind == "NullPool":
        return None
    size = getattr(pool, "size", None)
    timeout = getattr(pool, "timeout", None)
    return {
        "class": kind,
        "size": size() if callable(size) else None,
        "max_overflow": getattr(pool, "_max_overflow", None),
        "timeout": timeout() if callable(timeout) else None,
        "recycle": getattr(pool, "_recycle", None),
        "pre_ping": getattr(pool, "_pre_ping", None),
    }


def pool_counts(pool: Pool, returning: bool) -> tuple[int | None, int | None]:
    """Connections checked out, and overflow connections open, right after the event.

    Only a QueuePool counts. A checkin event fires before the pool takes the connection
    back, so that one is subtracted; it is closed (one overflow fewer) when the pool's
    queue is already full, i.e. when all checked-out connections are overflow ones.
    """
    checkedout = getattr(pool, "checkedout", None)
    overflow = getattr(pool, "overflow", None)
    if not callable(checkedout) or not callable(overflow):
        return None, None
    out: int = checkedout()
    over: int = overflow()
    if returning:
        if over > 0 and out == over:
            over -= 1
        out -= 1
    return max(out, 0), max(over, 0)
