"""Record ``shop.log``: a real PostgreSQL log of an app's workload against the demo shop.

The demo reads a server log the way a user would bring one: stock stderr format, every
statement with its duration (``log_min_duration_statement = 0``), literals in the text
(the app uses the simple query protocol). Rather than hand-write such a log, we start a
throwaway server with those settings, load the shop, run the workload below and keep the
part of the server log the workload wrote. Re-run with::

    python -m explainer.demo.record_log [--scale 1.0] [--output path]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, LiteralString

import psycopg

from explainer.db.server import ThrowawayServer
from explainer.demo.data import create_demo_database
from explainer.errors import ExplainerError

DATABASE: Final = "shop"
LOG_LINE_PREFIX: Final = "%m [%p] %q%u@%d "
LOG_SETTINGS: Final = {
    "log_min_duration_statement": "0",
    "log_line_prefix": LOG_LINE_PREFIX,
    "log_timezone": "UTC",
    "lc_messages": "C",
}
DEFAULT_OUTPUT: Final = Path(__file__).with_name("shop.log")
WORKLOAD_SEED: Final = "explainer-demo-workload-v1"
APP_CONNECTIONS: Final = 3
"""The app's connection pool: the log shows several backend pids, as a real one does."""

Params = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Samples:
    """Real values from the loaded shop for the workload's literals."""

    emails: list[str]
    customer_ids: list[int]
    order_ids: list[int]
    product_ids: list[int]
    skus: list[str]


@dataclass(frozen=True, slots=True)
class QueryShape:
    """One kind of statement the app runs, and how it picks its literal values."""

    name: str
    sql: LiteralString
    params: Callable[[random.Random, Samples], Params]
    runs: int


SHAPES: Final[tuple[QueryShape, ...]] = (
    QueryShape(
        "login",
        "SELECT id, name, country FROM customers WHERE email = %s",
        lambda rng, s: (rng.choice(s.emails),),
        runs=8,
    ),
    QueryShape(
        "customer orders",
        "SELECT id, status, created_at, total FROM orders WHERE customer_id = %s "
        "ORDER BY created_at DESC LIMIT 20",
        lambda rng, s: (rng.choice(s.customer_ids),),
        runs=8,
    ),
    QueryShape(
        "pending orders to ship",
        """SELECT id, customer_id, created_at, total
FROM orders
WHERE status = 'pending'
  AND created_at >= %s
ORDER BY created_at
LIMIT 50""",
        lambda rng, s: (rng.choice(["2025-11-01", "2025-11-15", "2025-12-01", "2025-12-10"]),),
        runs=5,
    ),
    QueryShape(
        "order items",
        """SELECT i.product_id, p.name, i.quantity, i.unit_price
FROM order_items i
JOIN products p ON p.id = i.product_id
WHERE i.order_id = %s""",
        lambda rng, s: (rng.choice(s.order_ids),),
        runs=8,
    ),
    QueryShape(
        "product reviews",
        "SELECT rating, body FROM reviews WHERE product_id = %s ORDER BY id DESC LIMIT 10",
        lambda rng, s: (rng.choice(s.product_ids),),
        runs=6,
    ),
    QueryShape(
        "product rating",
        "SELECT count(*), round(avg(rating), 2) FROM reviews WHERE product_id = %s",
        lambda rng, s: (rng.choice(s.product_ids),),
        runs=5,
    ),
    QueryShape(
        "pending count",
        "SELECT count(*) FROM orders WHERE status = %s",
        lambda rng, s: (rng.choice(["pending", "pending", "shipped"]),),
        runs=4,
    ),
    QueryShape(
        "category revenue report",
        """SELECT p.category, count(*) AS items, sum(i.quantity * i.unit_price) AS revenue
FROM orders o
JOIN order_items i ON i.order_id = o.id
JOIN products p ON p.id = i.product_id
WHERE o.created_at >= %s
  AND o.status <> 'cancelled'
GROUP BY p.category
ORDER BY revenue DESC""",
        lambda rng, s: (rng.choice(["2025-12-01", "2025-12-24"]),),
        runs=3,
    ),
    QueryShape(
        "product page",
        "SELECT id, sku, name, category, price FROM products WHERE id = %s",
        lambda rng, s: (rng.choice(s.product_ids),),
        runs=6,
    ),
    QueryShape(
        "sku lookup",
        "SELECT id, name, price FROM products WHERE sku = %s",
        lambda rng, s: (rng.choice(s.skus),),
        runs=4,
    ),
)
"""The read side of the app. Login, customer orders, pending orders, order items, reviews
and the report all filter on unindexed columns; product page (primary key) and sku lookup
(unique index) are already served."""


def main(argv: Sequence[str] | None = None) -> int:
    """Record the log and write the workload's part of it to ``--output``."""
    parser = argparse.ArgumentParser(
        prog="python -m explainer.demo.record_log",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--scale", type=float, default=1.0, help="demo data scale (1.0)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write")
    args = parser.parse_args(argv)
    try:
        text = record(scale=args.scale)
    except ExplainerError as exc:
        print(f"record_log: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {len(text.splitlines())} lines, {len(text)} bytes")
    return 0


def record(*, scale: float = 1.0) -> str:
    """Start a server, load the shop, run the workload; return the log lines it produced."""
    with ThrowawayServer(settings=LOG_SETTINGS) as server:
        dsn = server.create_database(DATABASE)
        summary = create_demo_database(dsn, scale=scale)
        print(f"loaded {summary.total_rows} rows in {summary.seconds:.1f} s", file=sys.stderr)
        rng = random.Random(WORKLOAD_SEED)
        samples = _samples(dsn, rng)
        offset = server.log_path.stat().st_size
        run_workload(dsn, rng, samples)
        time.sleep(0.2)  # the last log lines are written after the client got its answer
        with server.log_path.open(encoding="utf-8") as log:
            log.seek(offset)
            return workload_records(log.read(), DATABASE)


def _samples(dsn: str, rng: random.Random) -> Samples:
    """Pick literals from the data: customers who have orders, popular products..."""
    with psycopg.connect(dsn) as conn:
        (customers,) = _one(conn, "SELECT max(id) FROM customers")
        (orders,) = _one(conn, "SELECT max(id) FROM orders")
        (items,) = _one(conn, "SELECT max(id) FROM order_items")
        assert isinstance(customers, int) and isinstance(orders, int) and isinstance(items, int)
        customer_picks = [rng.randint(1, customers) for _ in range(12)]
        emails = [
            str(r[0])
            for r in conn.execute(
                "SELECT email FROM customers WHERE id = ANY(%s) ORDER BY id", (customer_picks,)
            )
        ]
        emails.append("nobody@example.org")  # a failed login
        order_picks = [rng.randint(1, orders) for _ in range(12)]
        buyers = [
            int(r[0])
            for r in conn.execute(
                "SELECT customer_id FROM orders WHERE id = ANY(%s) ORDER BY id", (order_picks,)
            )
        ]
        item_picks = [rng.randint(1, items) for _ in range(12)]
        products = [
            int(r[0])
            for r in conn.execute(
                "SELECT product_id FROM order_items WHERE id = ANY(%s) ORDER BY id", (item_picks,)
            )
        ]
        skus = [
            str(r[0])
            for r in conn.execute(
                "SELECT sku FROM products WHERE id = ANY(%s) ORDER BY id", (products,)
            )
        ]
    return Samples(emails, buyers, [rng.randint(1, orders) for _ in range(12)], products, skus)


def _one(conn: psycopg.Connection[tuple[object, ...]], query: LiteralString) -> Params:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row


def run_workload(dsn: str, rng: random.Random, samples: Samples) -> None:
    """Run every shape its number of times, shuffled, over a small pool of connections, with
    two order placements in explicit transactions. ClientCursor puts the literals in the
    statement text (simple protocol), as many apps and ORMs do."""
    plan: list[QueryShape | None] = [s for s in SHAPES for _ in range(s.runs)]
    plan += [None, None]  # None: place an order (a transaction)
    rng.shuffle(plan)
    connections = [
        psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor)
        for _ in range(APP_CONNECTIONS)
    ]
    try:
        for step, shape in enumerate(plan):
            conn = connections[step % len(connections)]
            if shape is None:
                _place_order(conn, rng, samples)
            else:
                conn.execute(shape.sql, shape.params(rng, samples)).fetchall()
    finally:
        for conn in connections:
            conn.close()


def _place_order(
    conn: psycopg.Connection[tuple[object, ...]], rng: random.Random, samples: Samples
) -> None:
    customer = rng.choice(samples.customer_ids)
    lines = [(rng.choice(samples.product_ids), rng.randint(1, 3)) for _ in range(2)]
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO orders (customer_id, status, created_at, total) "
            "VALUES (%s, 'pending', now(), 0) RETURNING id",
            (customer,),
        ).fetchone()
        assert row is not None
        for product, quantity in lines:
            conn.execute(
                "INSERT INTO order_items (order_id, product_id, quantity, unit_price) "
                "SELECT %s, id, %s, price FROM products WHERE id = %s",
                (row[0], quantity, product),
            )
        conn.execute(
            "UPDATE orders SET total = (SELECT sum(quantity * unit_price) FROM order_items "
            "WHERE order_id = %s) WHERE id = %s",
            (row[0], row[0]),
        )


_SESSION_PREFIX: Final = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] [^ @]*@(\S*) ")
"""What LOG_LINE_PREFIX gives a client session: ``%m [%p] user@db``; background processes
(checkpointer, autovacuum) have no user@db part (``%q`` ends their prefix)."""


def workload_records(log_text: str, database: str) -> str:
    """Keep the log records of sessions on ``database``: lines with such a prefix and their
    TAB-indented continuation lines (the rest of a multi-line statement)."""
    kept: list[str] = []
    keep = False
    for line in log_text.splitlines(keepends=True):
        if not line.startswith("\t"):
            match = _SESSION_PREFIX.match(line)
            keep = match is not None and match.group(1) == database
        if keep:
            kept.append(line)
    return "".join(kept)


if __name__ == "__main__":
    raise SystemExit(main())
