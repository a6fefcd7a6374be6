"""Fill a database with the demo shop: deterministic, skewed data, loaded fast with COPY.

Skew is what makes a demo of indexes honest: a few countries hold most customers, a few
products most sales, 90% of orders are delivered and only 2% pending (so an index on status
pays off for ``status = 'pending'`` and not for ``'delivered'``). Every random choice comes
from a ``random.Random`` seeded per table, so the same scale always gives the same rows,
whatever the machine, and tests can compare checksums.

Speed: rows are formatted as COPY text in chunks of thousands of lines (one ``write`` per
chunk), into tables created in the same transaction with ``COPY ... FREEZE``, and keys and
foreign keys are added only after the load. At scale 1.0 (1.355 M rows) this takes seconds.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Final

import psycopg
from psycopg import sql

from explainer.demo.schema import COLUMNS, CONSTRAINTS, TABLES, row_counts
from explainer.errors import ConnectionFailed, ExplainerError, InputError, QueryFailed

SEED: Final = "explainer-demo-shop-v1"
"""Changing the generators changes the data: bump this with them, and tests' checksums."""

CHUNK_ROWS: Final = 10_000

SHOP_OPENED: Final = datetime(2024, 1, 1, tzinfo=UTC)
"""Customers sign up from this day on (fixed, not now(): the data must be reproducible)."""
FIRST_ORDERS: Final = SHOP_OPENED + timedelta(days=30)
DATA_ENDS: Final = datetime(2026, 1, 1, tzinfo=UTC)

ORDER_STATUSES: Final = ("delivered", "shipped", "pending", "cancelled")
ORDER_STATUS_WEIGHTS: Final = (90, 7, 2, 1)

_FIRST_NAMES: Final = (
    "Ada",
    "Alan",
    "Alice",
    "Amir",
    "Ana",
    "Ben",
    "Carla",
    "Chen",
    "Chloe",
    "Daniel",
    "Elena",
    "Emma",
    "Farid",
    "Grace",
    "Hana",
    "Ivan",
    "Jack",
    "Julia",
    "Kenji",
    "Lars",
    "Laura",
    "Leo",
    "Lucas",
    "Maria",
    "Mei",
    "Mohamed",
    "Nina",
    "Noah",
    "Olga",
    "Omar",
    "Paul",
    "Priya",
    "Rosa",
    "Sam",
    "Sofia",
    "Tom",
    "Uma",
    "Victor",
    "Yara",
    "Zoe",
)
_LAST_NAMES: Final = (
    "Andersen",
    "Baker",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Martin",
    "Meyer",
    "Nakamura",
    "Novak",
    "Olsen",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Silva",
    "Smith",
    "Tanaka",
    "Taylor",
    "Ueda",
    "Van Dijk",
    "Wang",
    "Weber",
    "Wilson",
    "Yilmaz",
    "Zhang",
)
_EMAIL_DOMAINS: Final = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "example.org")
_EMAIL_DOMAIN_WEIGHTS: Final = (45, 25, 15, 10, 5)
_COUNTRIES: Final = (
    "US",
    "GB",
    "DE",
    "FR",
    "CA",
    "IN",
    "BR",
    "AU",
    "NL",
    "ES",
    "IT",
    "SE",
    "PL",
    "JP",
    "MX",
    "IE",
    "PT",
    "NO",
    "NZ",
    "IS",
)
_COUNTRY_WEIGHTS: Final = (
    32,
    12,
    11,
    8,
    6,
    6,
    5,
    4,
    3,
    3,
    3,
    2,
    1.5,
    1.2,
    1,
    0.6,
    0.4,
    0.2,
    0.08,
    0.02,
)
_CATEGORIES: Final = (
    "books",
    "clothing",
    "electronics",
    "home",
    "kitchen",
    "toys",
    "garden",
    "sports",
    "beauty",
    "grocery",
    "music",
    "office",
)
_CATEGORY_WEIGHTS: Final = (22, 18, 14, 10, 9, 7, 6, 5, 4, 2, 2, 1)
_ADJECTIVES: Final = (
    "Rustic",
    "Sleek",
    "Compact",
    "Classic",
    "Deluxe",
    "Eco",
    "Ergonomic",
    "Handmade",
    "Modern",
    "Vintage",
    "Smart",
    "Sturdy",
    "Tiny",
    "Premium",
    "Everyday",
    "Portable",
)
_NOUNS: Final = (
    "Lamp",
    "Chair",
    "Mug",
    "Backpack",
    "Notebook",
    "Kettle",
    "Headphones",
    "Jacket",
    "Novel",
    "Puzzle",
    "Planter",
    "Ball",
    "Soap",
    "Tea",
    "Vinyl",
    "Stapler",
    "Blender",
    "Scarf",
)
_QUANTITIES: Final = (1, 2, 3, 4, 5)
_QUANTITY_WEIGHTS: Final = (70, 20, 6, 3, 1)
_RATINGS: Final = (5, 4, 3, 2, 1)
_RATING_WEIGHTS: Final = (45, 25, 12, 8, 10)
_REVIEW_OPENERS: Final[Mapping[int, tuple[str, ...]]] = {
    5: ("Love it.", "Excellent!", "Exactly as described.", "Would buy again."),
    4: ("Pretty good.", "Happy with it.", "Nice, with small flaws."),
    3: ("It's fine.", "Average.", "Does the job, nothing more."),
    2: ("Disappointing.", "Not great.", "Expected better."),
    1: ("Broke after a week.", "Do not buy.", "Returned it."),
}
_REVIEW_DETAILS: Final = (
    "Shipping was fast.",
    "Shipping took ages.",
    "Good value for the price.",
    "A bit overpriced.",
    "The colour differs from the photos.",
    "My kids use it every day.",
    "Packaging could be better.",
    "Customer service was helpful.",
    "Bought it as a gift.",
    "Works as expected.",
    "Smaller than I thought.",
    "Solid build quality.",
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What :func:`create_demo_database` loaded, and how long it took."""

    scale: float
    row_counts: Mapping[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())


def create_demo_database(dsn: str, *, scale: float = 1.0) -> DemoSummary:
    """Create and fill the demo shop's tables in the (empty) database at ``dsn``.

    Tables, COPYs and keys go in one transaction, so a failure leaves the database as it
    was; then VACUUM ANALYZE, so the planner's statistics are right from the first query.
    """
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise InputError(f"the demo scale must be a positive number, not {scale!r}")
    counts = row_counts(scale)
    started = time.perf_counter()
    try:
        with psycopg.connect(dsn) as conn:
            _load_in_one_transaction(conn, counts)
            conn.autocommit = True
            conn.execute(
                sql.SQL("VACUUM (ANALYZE) {}").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
                )
            )
    except psycopg.errors.DuplicateTable as exc:
        raise ExplainerError(
            f"the database already has a demo table ({exc.diag.message_primary}): "
            "load the demo into a new, empty database"
        ) from exc
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(f"cannot load the demo database: {exc}") from exc
    except psycopg.Error as exc:
        raise QueryFailed(f"loading the demo database failed: {exc}") from exc
    return DemoSummary(scale=scale, row_counts=counts, seconds=time.perf_counter() - started)


def _load_in_one_transaction(
    conn: psycopg.Connection[tuple[object, ...]], counts: Mapping[str, int]
) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute("SET LOCAL synchronous_commit = off")
        for ddl in TABLES.values():
            conn.execute(sql.SQL(ddl))  # constant DDL
        for table, chunks in _table_chunks(counts):
            _copy(conn, table, chunks)
        for constraint in CONSTRAINTS:
            conn.execute(sql.SQL(constraint))  # constant DDL
        for table in TABLES:
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({table}, 'id'), max(id)) FROM {ident}"
                ).format(table=sql.Literal(table), ident=sql.Identifier(table))
            )


def _copy(conn: psycopg.Connection[tuple[object, ...]], table: str, chunks: Iterator[str]) -> None:
    """COPY pre-formatted text: FREEZE, because the table is new in this transaction, so
    VACUUM afterwards has nothing to do but set hint bits and statistics."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS[table])
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)


def _table_chunks(counts: Mapping[str, int]) -> Iterator[tuple[str, Iterator[str]]]:
    """Each table with its COPY text, in an order where every generator has what it needs:
    product prices before order items, order items (their totals) before orders."""
    products = _make_products(counts["products"], _rng("products"))
    popularity = _popularity(len(products), _rng("popularity"))
    items_per_order = _items_per_order(counts["orders"], counts["order_items"], _rng("basket"))
    totals = [0] * counts["orders"]
    yield "products", _product_chunks(products)
    yield "customers", _customer_chunks(counts["customers"], _rng("customers"))
    yield (
        "order_items",
        _order_item_chunks(items_per_order, products, popularity, totals, _rng("order_items")),
    )
    yield "orders", _order_chunks(totals, counts["customers"], _rng("orders"))
    yield (
        "reviews",
        _review_chunks(
            counts["reviews"], len(products), counts["customers"], popularity, _rng("reviews")
        ),
    )


def _rng(stream: str) -> random.Random:
    """One generator per table, so a table's rows do not depend on the others' sizes."""
    return random.Random(f"{SEED}:{stream}")


# --------------------------------------------------------------------------- formatting


def _timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}+00"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _weighted(values: Sequence[object], weights: Sequence[float]) -> tuple[list[float], float]:
    """Cumulative weights for ``values[bisect(cum, random() * total)]``: random.choices
    without its per-call overhead, which matters over a million rows."""
    cumulative = list(accumulate(weights))
    assert len(cumulative) == len(values)
    return cumulative, cumulative[-1]


def _chunked(lines: Iterator[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= CHUNK_ROWS:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True, slots=True)
class _Product:
    sku: str
    name: str
    category: str
    price_cents: int


def _make_products(count: int, rng: random.Random) -> list[_Product]:
    """Small enough to keep in memory; order items need the prices."""
    cum, total = _weighted(_CATEGORIES, _CATEGORY_WEIGHTS)
    products = []
    for pid in range(1, count + 1):
        category = _CATEGORIES[bisect(cum, rng.random() * total)]
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        # Log-normal prices: mostly 10-60, a long tail of expensive things.
        price = min(250_000, max(99, round(rng.lognormvariate(3.2, 0.9) * 100)))
        products.append(_Product(f"SKU-{pid:06d}", name, category, price))
    return products


def _product_chunks(products: Sequence[_Product]) -> Iterator[str]:
    return _chunked(
        f"{pid}\t{p.sku}\t{p.name}\t{p.category}\t{_money(p.price_cents)}\n"
        for pid, p in enumerate(products, start=1)
    )


def _popularity(count: int, rng: random.Random) -> list[int]:
    """Product ids in order of popularity: a shuffled list, so best sellers are scattered
    over the id range rather than being ids 1, 2, 3."""
    ids = list(range(1, count + 1))
    rng.shuffle(ids)
    return ids


def _customer_chunks(count: int, rng: random.Random) -> Iterator[str]:
    """Customers sign up one after another over two years: id order is signup order."""
    country_cum, country_total = _weighted(_COUNTRIES, _COUNTRY_WEIGHTS)
    domain_cum, domain_total = _weighted(_EMAIL_DOMAINS, _EMAIL_DOMAIN_WEIGHTS)
    span = (DATA_ENDS - SHOP_OPENED).total_seconds()

    def lines() -> Iterator[str]:
        for cid in range(1, count + 1):
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            local = f"{first}.{last}".lower().replace(" ", "")
            domain = _EMAIL_DOMAINS[bisect(domain_cum, rng.random() * domain_total)]
            country = _COUNTRIES[bisect(country_cum, rng.random() * country_total)]
            signup = SHOP_OPENED + timedelta(seconds=int(span * (cid - 1 + rng.random()) / count))
            yield f"{cid}\t{local}{cid}@{domain}\t{first} {last}\t{country}\t{_timestamp(signup)}\n"

    return _chunked(lines())


def _items_per_order(orders: int, items: int, rng: random.Random) -> list[int]:
    """Every order has one item, the rest are spread at random: 1 + Poisson-ish baskets."""
    counts = [1] * orders
    for index in rng.choices(range(orders), k=items - orders):
        counts[index] += 1
    return counts


def _order_item_chunks(
    items_per_order: Sequence[int],
    products: Sequence[_Product],
    popularity: Sequence[int],
    totals: list[int],
    rng: random.Random,
) -> Iterator[str]:
    """Order items, best sellers first (a cubic skew); fills ``totals`` (cents) per order."""
    quantity_cum, quantity_total = _weighted(_QUANTITIES, _QUANTITY_WEIGHTS)
    n_products = len(products)

    def lines() -> Iterator[str]:
        item_id = 0
        for order_index, basket in enumerate(items_per_order):
            order_id = order_index + 1
            for _ in range(basket):
                item_id += 1
                product_id = popularity[int(n_products * rng.random() ** 3)]
                quantity = _QUANTITIES[bisect(quantity_cum, rng.random() * quantity_total)]
                price = products[product_id - 1].price_cents
                totals[order_index] += quantity * price
                yield f"{item_id}\t{order_id}\t{product_id}\t{quantity}\t{_money(price)}\n"

    return _chunked(lines())


def _order_chunks(totals: Sequence[int], customers: int, rng: random.Random) -> Iterator[str]:
    """Orders in time order, the shop growing (more orders per day as time goes on).

    Each order's customer has already signed up, with a power skew towards long-standing
    customers, so some customers have dozens of orders and most have a few.
    """
    status_cum, status_total = _weighted(ORDER_STATUSES, ORDER_STATUS_WEIGHTS)
    count = len(totals)
    first = (FIRST_ORDERS - SHOP_OPENED).total_seconds()
    span = (DATA_ENDS - FIRST_ORDERS).total_seconds()
    signup_span = (DATA_ENDS - SHOP_OPENED).total_seconds()

    def lines() -> Iterator[str]:
        for index, total in enumerate(totals):
            offset = first + span * math.sqrt((index + rng.random()) / count)
            signed_up = max(1, min(customers, int(customers * offset / signup_span)))
            customer_id = 1 + int(signed_up * rng.random() ** 1.5)
            status = ORDER_STATUSES[bisect(status_cum, rng.random() * status_total)]
            created = _timestamp(SHOP_OPENED + timedelta(seconds=int(offset)))
            yield f"{index + 1}\t{customer_id}\t{status}\t{created}\t{_money(total)}\n"

    return _chunked(lines())


def _review_chunks(
    count: int, products: int, customers: int, popularity: Sequence[int], rng: random.Random
) -> Iterator[str]:
    """Reviews cluster on popular products; ratings lean to 5 stars, with a 1-star bump."""
    rating_cum, rating_total = _weighted(_RATINGS, _RATING_WEIGHTS)

    def lines() -> Iterator[str]:
        for rid in range(1, count + 1):
            product_id = popularity[int(products * rng.random() ** 2)]
            customer_id = 1 + int(customers * rng.random())
            rating = _RATINGS[bisect(rating_cum, rng.random() * rating_total)]
            body = f"{rng.choice(_REVIEW_OPENERS[rating])} {rng.choice(_REVIEW_DETAILS)}"
            yield f"{rid}\t{product_id}\t{customer_id}\t{rating}\t{body}\n"

    return _chunked(lines())
