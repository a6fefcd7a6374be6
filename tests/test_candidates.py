"""Index candidates: SQL (with catalog facts and pg_stats built by hand) -> the indexes an
expert would try; and, on a real server, that the planner uses each one proposed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import psycopg
import pytest

from explainer.advise.candidates import covering_index, derive_candidate, derive_candidates
from explainer.advise.ddl import create_index_sql
from explainer.advise.model import IndexCandidate, NoSuggestionReason
from explainer.db.catalog import ExistingIndex, TableInfo, table_info
from explainer.db.stats import ColumnStats, TableStats, installed_extensions, table_stats
from explainer.plan import Plan, PlanNode, plan_from_document

COLUMNS = (
    "id",
    "status",
    "created_at",
    "customer_id",
    "email",
    "payload",
    "total",
    "name",
    "deleted_at",
)
ORDERS = TableInfo("public", "orders", 1_000_000, 200_000_000, COLUMNS)
CUSTOMERS = TableInfo("public", "customers", 100_000, 20_000_000, ("id", "email", "name"))

# status: 'pending' 1%, 'cancelled' 25%, 'shipped' 74%; deleted_at NULL on 97% of rows.
STATS = TableStats(
    "public",
    "orders",
    reltuples=1_000_000,
    relpages=20_000,
    relallvisible=19_000,
    columns={
        "status": ColumnStats(
            "status", "text", 0, 3, ("shipped", "cancelled", "pending"), (0.74, 0.25, 0.01)
        ),
        "deleted_at": ColumnStats("deleted_at", "timestamp without time zone", 0.97, -0.03),
        "customer_id": ColumnStats("customer_id", "integer", 0, 50_000),
        "email": ColumnStats("email", "character varying(200)", 0, -1),
        "payload": ColumnStats("payload", "jsonb", 0, -1),
        "name": ColumnStats("name", "text", 0, -0.5),
        "created_at": ColumnStats("created_at", "timestamp without time zone", 0, -1),
    },
)
TRGM = frozenset({"pg_trgm", "plpgsql"})
# Four tiers, a quarter of the rows each.
USERS = TableInfo("public", "users", 200_000, 40_000_000, ("id", "email", "tier"))
USERS_STATS = TableStats(
    "public",
    "users",
    reltuples=200_000,
    relpages=4_000,
    relallvisible=4_000,
    columns={
        "tier": ColumnStats(
            "tier", "text", 0, 4, ("basic", "free", "gold", "pro"), (0.25, 0.25, 0.25, 0.25)
        )
    },
)

Expected = list[tuple[tuple[str, ...], str | None, str, tuple[str, ...]]]


def _shape(candidates: list[IndexCandidate]) -> Expected:
    return [(c.columns, c.where, c.using, c.include) for c in candidates]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # Equality, then the one range column.
        (
            "SELECT * FROM orders WHERE customer_id = 7 AND created_at >= '2024-01-01'",
            [(("customer_id", "created_at"), None, "btree", ())],
        ),
        # IN and IS NULL count as equality; the range comes after them whatever the order.
        (
            "SELECT * FROM orders "
            "WHERE created_at < $1 AND customer_id IN (1, 2) AND total IS NULL",
            [(("customer_id", "total", "created_at"), None, "btree", ())],
        ),
        # The rare status gets the composite ordered index, then its partial alternative.
        (
            "SELECT * FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 20",
            [
                (("status", "created_at DESC"), None, "btree", ()),
                (("created_at DESC",), "status = 'pending'", "btree", ()),
            ],
        ),
        # A 25% status with ORDER BY ... LIMIT: the ordered scan stops early, still worth it;
        # no partial index for a common value.
        (
            "SELECT * FROM orders WHERE status = 'cancelled' ORDER BY created_at DESC LIMIT 20",
            [(("status", "created_at DESC"), None, "btree", ())],
        ),
        # NULLS order only when the query asks for the non-default one.
        (
            "SELECT * FROM orders WHERE customer_id = $1 "
            "ORDER BY created_at DESC NULLS LAST LIMIT 5",
            [(("customer_id", "created_at DESC NULLS LAST"), None, "btree", ())],
        ),
        # A range on the ORDER BY column serves both, with the query's direction.
        (
            "SELECT * FROM orders WHERE customer_id = 3 AND created_at > now() "
            "ORDER BY created_at DESC LIMIT 10",
            [(("customer_id", "created_at DESC"), None, "btree", ())],
        ),
        # A range on another column ends the key.
        (
            "SELECT * FROM orders WHERE customer_id = 3 AND total > 100 ORDER BY created_at",
            [(("customer_id", "total"), None, "btree", ())],
        ),
        # A few selected columns beyond the keys, mostly all-visible table: INCLUDE variant.
        (
            "SELECT id, total FROM orders WHERE customer_id = 3",
            [
                (("customer_id",), None, "btree", ()),
                (("customer_id",), None, "btree", ("id", "total")),
            ],
        ),
        # Expressions as PostgreSQL deparses the query's own text (not sqlglot's 'DAY').
        (
            "SELECT * FROM orders WHERE lower(email) = 'a@b.c'",
            [(("lower(email)",), None, "btree", ())],
        ),
        (
            "SELECT * FROM orders o WHERE date_trunc('day', o.created_at) = '2024-01-01'",
            [(("date_trunc('day', created_at)",), None, "btree", ())],
        ),
        (
            "SELECT * FROM orders WHERE (payload->>'kind') = 'gift'",
            [(("payload ->> 'kind'",), None, "btree", ())],
        ),
        # A cast to text is the column itself.
        ("SELECT * FROM orders WHERE email::text = 'a'", [(("email",), None, "btree", ())]),
        # Prefix LIKE: btree with the pattern operator class (any collation).
        (
            "SELECT * FROM orders WHERE name LIKE 'Smi%'",
            [(("name text_pattern_ops",), None, "btree", ())],
        ),
        # Infix LIKE / ILIKE: trigram GIN.
        (
            "SELECT * FROM orders WHERE name LIKE '%mith%'",
            [(("name gin_trgm_ops",), None, "gin", ())],
        ),
        (
            "SELECT * FROM orders WHERE name ILIKE '%smith'",
            [(("name gin_trgm_ops",), None, "gin", ())],
        ),
        (
            "SELECT * FROM orders WHERE name ~~* '%smith%'",
            [(("name gin_trgm_ops",), None, "gin", ())],
        ),
        # jsonb containment.
        (
            """SELECT * FROM orders WHERE payload @> '{"kind": "gift"}'""",
            [(("payload jsonb_path_ops",), None, "gin", ())],
        ),
        # Rare IS NOT NULL: partial alternative keyed on the rest.
        (
            "SELECT * FROM orders WHERE deleted_at IS NOT NULL AND customer_id = 5",
            [
                (("customer_id",), None, "btree", ()),
                (("customer_id",), "deleted_at IS NOT NULL", "btree", ()),
            ],
        ),
        # Join keys: an index on the referencing column of the joined table.
        (
            "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id "
            "WHERE c.email = $1",
            [(("customer_id",), None, "btree", ())],
        ),
        # Correlated subquery: the outer column is the join key.
        (
            "SELECT * FROM customers c WHERE EXISTS "
            "(SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'pending')",
            [
                (("status",), None, "btree", ()),
                (("status",), None, "btree", ("customer_id",)),
                (("customer_id", "status"), None, "btree", ()),
            ],
        ),
        # A $n on a skewed column: 'pending' (1%) may be the value sent, the average
        # (a third) must not reject it; the verification judges it.
        (
            "SELECT * FROM orders WHERE status = $1",
            [(("status",), None, "btree", ())],
        ),
        # ORDER BY ... LIMIT alone: an ordered scan.
        (
            "SELECT * FROM orders ORDER BY created_at DESC LIMIT 10",
            [(("created_at DESC",), None, "btree", ())],
        ),
    ],
)
def test_candidates(sql: str, expected: Expected) -> None:
    result = derive_candidates(sql, ORDERS, stats=STATS, extensions=TRGM)
    assert _shape(result.candidates) == expected
    assert result.rejected == []


@pytest.mark.parametrize(
    ("sql", "table", "stats", "extensions", "reason", "words"),
    [
        # 25% of the rows: no index (and the figure is shown).
        ("SELECT * FROM orders WHERE status = 'cancelled'", ORDERS, STATS, TRGM,
         NoSuggestionReason.LOW_SELECTIVITY, ["status = 'cancelled' keeps 25%", "20%"]),
        # A $n on a column whose every value is common: a quarter whatever is sent.
        ("SELECT * FROM users WHERE tier = $1", USERS, USERS_STATS, TRGM,
         NoSuggestionReason.LOW_SELECTIVITY, ["25%"]),
        # IN of two common values: 99%.
        ("SELECT * FROM orders WHERE status IN ('shipped', 'cancelled')", ORDERS, STATS, TRGM,
         NoSuggestionReason.LOW_SELECTIVITY, ["99%"]),
        ("SELECT * FROM orders WHERE name LIKE '%xyz%'", ORDERS, STATS, frozenset({"plpgsql"}),
         NoSuggestionReason.NEEDS_EXTENSION, ["CREATE EXTENSION pg_trgm"]),
        ("SELECT * FROM orders WHERE name LIKE '%ab%'", ORDERS, STATS, TRGM,
         NoSuggestionReason.NO_SARGABLE_PREDICATE, ["fewer than 3"]),
        # NOT LIKE keeps what does not match: no trigram index finds that (TPC-H Q13
        # was told to install pg_trgm for it).
        ("SELECT * FROM orders WHERE name NOT LIKE '%special%requests%'", ORDERS, STATS, TRGM,
         NoSuggestionReason.NO_SARGABLE_PREDICATE, ["orders"]),
        ("SELECT * FROM orders WHERE name NOT ILIKE 'abc%'", ORDERS, STATS, frozenset(),
         NoSuggestionReason.NO_SARGABLE_PREDICATE, ["orders"]),
        ("SELECT * FROM orders WHERE total + 1 > id", ORDERS, STATS, TRGM,
         NoSuggestionReason.NO_SARGABLE_PREDICATE, ["orders"]),
        ("SELECT * FROM orders WHERE customer_id = 1",
         TableInfo("public", "orders", 5000, 40 * 8192, COLUMNS), None, TRGM,
         NoSuggestionReason.SMALL_TABLE, ["5000 rows", "10000"]),
    ],
)  # fmt: skip
def test_rejections(
    sql: str,
    table: TableInfo,
    stats: TableStats | None,
    extensions: frozenset[str],
    reason: NoSuggestionReason,
    words: list[str],
) -> None:
    result = derive_candidates(sql, table, stats=stats, extensions=extensions)
    assert result.candidates == []
    assert [r.reason for r in result.rejected] == [reason]
    for word in words:
        assert word in result.rejected[0].detail


def test_a_small_table_scanned_by_many_loops_is_not_small() -> None:
    small = TableInfo("public", "orders", 5000, 40 * 8192, COLUMNS)
    node = PlanNode("Seq Scan", "0.1", relation="orders", actual_loops=1000)
    result = derive_candidates("SELECT * FROM orders WHERE customer_id = 1", small, node=node)
    assert _shape(result.candidates) == [(("customer_id",), None, "btree", ())]


def test_the_plan_says_the_scan_is_a_nested_loop_inner_side() -> None:
    # Without the plan the equality key leads; as the inner side of a nested loop the join
    # key, which the loop compares on every outer row, comes first.
    sql = (
        "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'pending'"
    )
    inner = PlanNode(
        "Seq Scan", "0.1", relation="orders", alias="o", parent_relationship="Inner",
        filter="((o.status = 'pending'::text) AND (o.customer_id = c.id))", actual_loops=50,
    )  # fmt: skip
    outer = PlanNode(
        "Seq Scan", "0.0", relation="customers", alias="c", parent_relationship="Outer"
    )
    plan = Plan(PlanNode("Nested Loop", "0", children=[outer, inner]))
    inner.path, outer.path = "0.1", "0.0"
    result = derive_candidates(sql, ORDERS, plan=plan, node=inner, stats=STATS)
    assert result.candidates[0].columns == ("status", "customer_id")
    without = derive_candidates(sql, ORDERS, stats=STATS)
    assert without.candidates[0].columns == ("status",)
    assert ("customer_id", "status") in [c.columns for c in without.candidates]


def test_join_keys_from_the_join_filter_only_the_plan_shows() -> None:
    # The SQL joins through a view-like subquery sqlglot cannot attribute; the plan's Join
    # Filter names the inner table's column.
    inner = PlanNode("Seq Scan", "0.1", relation="orders", alias="o", parent_relationship="Inner")
    outer = PlanNode("Seq Scan", "0.0", relation="customers", alias="c")
    loop = PlanNode(
        "Nested Loop", "0", join_filter="(o.customer_id = c.id)", children=[outer, inner]
    )
    result = derive_candidates("SELECT 1 FROM orders", ORDERS, plan=Plan(loop), node=inner)
    assert _shape(result.candidates) == [(("customer_id",), None, "btree", ())]


SELECTIVE_JOIN = (
    "SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id "
    "WHERE o.status = 'cancelled' AND c.email LIKE 'a%'"
)


def _hash_join(scanned: float, joined: float, *, analyzed: bool, hashed: bool) -> Plan:
    """orders (Seq Scan, ``scanned`` rows out) joined to customers, ``joined`` rows out;
    ``hashed``: orders is the hashed side, under a Hash node."""

    def rows(n: float) -> dict[str, float]:
        return {"actual_rows": n, "actual_loops": 1} if analyzed else {}

    scan = PlanNode(
        "Seq Scan", "", relation="orders", alias="o", plan_rows=scanned, **rows(scanned)
    )  # fmt: skip
    other = PlanNode("Seq Scan", "", relation="customers", alias="c", plan_rows=900)
    inner = PlanNode("Hash", "", children=[scan]) if hashed else other
    outer = other if hashed else scan
    join = PlanNode("Hash Join", "0", plan_rows=joined, children=[outer, inner], **rows(joined))
    plan = Plan(join)
    for node in plan.walk():
        for i, child in enumerate(node.children):
            child.path = f"{node.path}.{i}"
    return plan


@pytest.mark.parametrize(
    ("sql", "scanned", "joined", "analyzed", "hashed", "expected"),
    [
        # 'cancelled' keeps 25% of the orders (too many for an index), the join 4% of
        # those: the join key, then the equality key, covering what the query reads.
        (SELECTIVE_JOIN, 250_000, 10_000, True, False,
         [(("customer_id", "status"), None, "btree", ("total",))]),
        (SELECTIVE_JOIN, 250_000, 10_000, True, True,
         [(("customer_id", "status"), None, "btree", ("total",))]),
        # The planner's estimates when the plan was not run.
        (SELECTIVE_JOIN, 250_000, 10_000, False, False,
         [(("customer_id", "status"), None, "btree", ("total",))]),
        # The join keeps half of what the scan passes on: reading it all is right.
        (SELECTIVE_JOIN, 250_000, 125_000, True, False, []),
        # o.*: no index covers it, and heap lookups are what the planner judged slower.
        (SELECTIVE_JOIN.replace("o.total", "o.*"), 250_000, 10_000, True, False, []),
    ],
)  # fmt: skip
def test_a_selective_join_over_an_unselective_filter_gets_a_covering_join_index(
    sql: str, scanned: float, joined: float, analyzed: bool, hashed: bool, expected: Expected
) -> None:
    plan = _hash_join(scanned, joined, analyzed=analyzed, hashed=hashed)
    node = next(n for n in plan.walk() if n.relation == "orders")
    result = derive_candidates(sql, ORDERS, plan=plan, node=node, stats=STATS)
    assert _shape(result.candidates) == expected
    [reason] = result.rejected
    assert reason.reason is NoSuggestionReason.LOW_SELECTIVITY  # still said, either way


def _index(
    name: str, definition: str, predicate: str | None = None, method: str = "btree"
) -> ExistingIndex:
    # pg_get_indexdef(oid, k, true) prints each key without its direction.
    inner = definition[definition.index("(") + 1 : definition.rindex(")")].split(", ")
    columns = [re.sub(r" (DESC|ASC|NULLS \w+)( NULLS \w+)?$", "", c) for c in inner]
    return ExistingIndex(
        name, "public", "orders", tuple(columns), (), method, False, False, True, predicate,
        f"CREATE INDEX {name} ON public.orders USING {method} {definition}"
        + (f" WHERE ({predicate})" if predicate else ""),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("existing", "candidate", "equality", "covered"),
    [
        # Equality part in any order.
        ("(customer_id, status)", ("status", "customer_id"), 2, True),
        # ... but not the part after it: the old permutation laxness.
        ("(created_at, customer_id)", ("customer_id", "created_at"), 1, False),
        ("(customer_id, created_at, total)", ("customer_id", "created_at"), 1, True),
        # A longer existing index serves a prefix.
        ("(customer_id, status, total)", ("customer_id",), 1, True),
        # Directions: the same or all reversed (a backward scan).
        ("(status, created_at)", ("status", "created_at DESC"), 1, True),
        ("(status, created_at DESC)", ("status", "created_at DESC"), 1, True),
        ("(status, created_at, id)", ("status", "created_at DESC", "id"), 1, False),
        ("(status, created_at DESC NULLS LAST)", ("status", "created_at DESC"), 1, False),
        # Expressions as pg_get_indexdef prints them.
        ("(lower((email)::text))", ("lower(email)",), 1, True),
        ("((payload ->> 'kind'::text))", ("payload ->> 'kind'",), 1, True),
        ("(email)", ("lower(email)",), 1, False),
    ],
)
def test_covering_index(
    existing: str, candidate: tuple[str, ...], equality: int, covered: bool
) -> None:
    index = _index("ix_existing", existing)
    wanted = IndexCandidate.of("public", "orders", *candidate)
    assert (covering_index(wanted, (index,), equality=equality) is index) is covered


def test_partial_and_include_matching() -> None:
    partial = _index("ix_pending", "(created_at)", predicate="status = 'pending'::text")
    full = _index("ix_status_created", "(status, created_at)")
    wanted = IndexCandidate.of("public", "orders", "created_at DESC", where="status = 'pending'")
    assert covering_index(wanted, (partial,)) is partial
    # A full index leading with the predicate's column serves the partial candidate too.
    assert covering_index(wanted, (full,)) is full
    # A partial existing index never serves a full candidate.
    assert covering_index(IndexCandidate.of("public", "orders", "created_at"), (partial,)) is None
    other = IndexCandidate.of("public", "orders", "created_at", where="status = 'shipped'")
    assert covering_index(other, (partial,)) is None
    # INCLUDE columns must be stored by the existing index.
    covering = IndexCandidate.of("public", "orders", "status", include=("total",))
    assert covering_index(covering, (full,)) is None
    assert (
        covering_index(
            IndexCandidate.of("public", "orders", "status", include=("created_at",)), (full,)
        )
        is full
    )
    # GIN: same operator class; jsonb_ops serves containment too.
    gin = _index("ix_payload", "(payload)", method="gin")
    assert (
        covering_index(
            IndexCandidate.of("public", "orders", "payload jsonb_path_ops", using="gin"), (gin,)
        )
        is gin
    )
    assert (
        covering_index(
            IndexCandidate.of("public", "orders", "name gin_trgm_ops", using="gin"), (gin,)
        )
        is None
    )


def test_an_existing_index_is_named_and_suppresses_alternatives() -> None:
    existing = _index("ix_orders_customer_created", "(customer_id, created_at)")
    table = TableInfo("public", "orders", 1e6, 200_000_000, COLUMNS, (existing,))
    result = derive_candidates(
        "SELECT id, total FROM orders WHERE customer_id = 3", table, stats=STATS
    )
    assert result.candidates == []
    assert [r.reason for r in result.rejected] == [NoSuggestionReason.ALREADY_INDEXED]
    assert "ix_orders_customer_created" in result.rejected[0].detail
    assert list(result.covered_by.values()) == [existing]


def test_the_former_api_still_answers() -> None:
    candidate = derive_candidate(
        "SELECT * FROM orders WHERE status = $1 AND created_at > $2", ORDERS
    )
    assert candidate is not None and candidate.columns == ("status", "created_at")


# ---------------------------------------------------------------- on a real server

DB_QUERIES = [
    "SELECT * FROM cand_orders WHERE customer_id = 42 AND created_at >= now() - interval '30 days'",
    "SELECT * FROM cand_orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 20",
    "SELECT id, total FROM cand_orders WHERE customer_id = 42",
    "SELECT * FROM cand_orders WHERE lower(email) = 'user42@example.com'",
    "SELECT * FROM cand_orders WHERE (payload->>'kind') = 'k7'",
    "SELECT * FROM cand_orders WHERE date_trunc('day', created_at) = '2024-03-01'",
    "SELECT * FROM cand_orders WHERE email LIKE 'user123%'",
    "SELECT * FROM cand_orders WHERE email LIKE '%er1234@%'",
    "SELECT * FROM cand_orders WHERE note ILIKE '%zz12%'",
    """SELECT * FROM cand_orders WHERE payload @> '{"kind": "k7"}'""",
    "SELECT id FROM cand_orders WHERE note IS NOT NULL AND customer_id = 5",
    "SELECT c.name FROM cand_customers c JOIN cand_orders o ON o.customer_id = c.id "
    "WHERE c.id = 42",
    # 'cancelled' keeps 25% of the orders; the join with 2% of the customers keeps 2% of those.
    "SELECT o.total FROM cand_customers c JOIN cand_orders o ON o.customer_id = c.id "
    "WHERE o.status = 'cancelled' AND c.name LIKE 'c12%'",
]


@pytest.fixture(scope="module")
def shop(db_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute(
            """
            CREATE TABLE cand_customers (id int PRIMARY KEY, name text);
            INSERT INTO cand_customers SELECT g, 'c' || g FROM generate_series(1, 5000) g;
            CREATE TABLE cand_orders (
                id int PRIMARY KEY, customer_id int REFERENCES cand_customers, status text,
                created_at timestamp, email varchar(200), payload jsonb, total numeric,
                note text);
            INSERT INTO cand_orders
            SELECT g, 1 + g % 5000,
                   CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 4 = 1 THEN 'cancelled'
                        ELSE 'shipped' END,
                   timestamp '2024-01-01' + g * interval '1 minute',
                   'User' || g || '@example.com',
                   jsonb_build_object('kind', 'k' || g % 1000),
                   g % 500,
                   CASE WHEN g % 50 = 0 THEN 'zz' || g END
            FROM generate_series(1, 200000) g;
            """
        )
        conn.execute("VACUUM (FREEZE, ANALYZE) cand_orders, cand_customers")
        # PostgreSQL 18.6's first VACUUM after the load freezes every page but sets none
        # all-visible (its VERBOSE says so); the second does. Covering candidates need it.
        conn.execute("VACUUM cand_orders, cand_customers")
        yield conn


def _plan(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> Plan:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()
    assert row is not None
    document = row[0] if isinstance(row[0], list) else json.loads(str(row[0]))
    return plan_from_document(document[0])


@pytest.mark.parametrize("sql", DB_QUERIES)
def test_the_planner_uses_every_candidate(
    shop: psycopg.Connection[tuple[object, ...]], sql: str
) -> None:
    table = table_info(shop, "public", "cand_orders")
    assert table is not None
    plan = _plan(shop, sql)
    node = next(n for n in plan.walk() if n.relation == "cand_orders")
    stats = table_stats(shop, "public", "cand_orders")
    result = derive_candidates(
        sql, table, plan=plan, node=node, stats=stats, extensions=installed_extensions(shop)
    )
    assert result.candidates, result.rejected
    for candidate in result.candidates:
        with shop.transaction(force_rollback=True):
            shop.execute(create_index_sql(candidate))
            shop.execute("SET LOCAL enable_seqscan = off")
            text = "\n".join(str(r[0]) for r in shop.execute("EXPLAIN " + sql).fetchall())
        assert candidate.name in text, f"{create_index_sql(candidate)}\n{text}"


def test_rejections_on_a_real_server(shop: psycopg.Connection[tuple[object, ...]]) -> None:
    table = table_info(shop, "public", "cand_orders")
    assert table is not None
    stats = table_stats(shop, "public", "cand_orders")
    # 25% of the rows, read from pg_stats.
    unselective = derive_candidates(
        "SELECT * FROM cand_orders WHERE status = 'cancelled'", table, stats=stats
    )
    assert [r.reason for r in unselective.rejected] == [NoSuggestionReason.LOW_SELECTIVITY]
    # The share is pg_stats' own (ANALYZE samples: 24% to 26% of a true 25%).
    status = stats.column("status") if stats is not None else None
    assert status is not None
    share = status.frequency("cancelled")
    assert share is not None and 0.22 < share < 0.28
    assert f"keeps {share:.0%}" in unselective.rejected[0].detail
    # The primary key already serves id lookups, and the report names it.
    served = derive_candidates("SELECT * FROM cand_orders WHERE id = 5", table, stats=stats)
    assert served.candidates == []
    assert "cand_orders_pkey" in served.rejected[0].detail
    customers = table_info(shop, "public", "cand_customers")
    assert customers is not None
    small = derive_candidates(
        "SELECT * FROM cand_customers WHERE name = 'c1'", customers,
        stats=table_stats(shop, "public", "cand_customers"),
    )  # fmt: skip
    assert [r.reason for r in small.rejected] == [NoSuggestionReason.SMALL_TABLE]


PKEY = ExistingIndex(
    "customers_pkey", "public", "customers", ("id",), (), "btree", True, True, True, None,
    "CREATE UNIQUE INDEX customers_pkey ON public.customers USING btree (id)",
)  # fmt: skip


@pytest.mark.parametrize(
    ("sql", "expected", "rejected"),
    [
        # The join alternative (id, email) would lead with the primary key's column: every
        # probe already finds its one row by customers_pkey.
        (
            "SELECT o.* FROM customers c JOIN orders o ON o.customer_id = c.id "
            "WHERE c.email = 'a@b.c'",
            [(("email",), None, "btree", ())],
            [("id", "email")],
        ),
        # Equality on the key itself and another column: nothing to add to the primary key.
        ("SELECT * FROM customers WHERE id = 7 AND name = 'x'", [], [("id", "name")]),
        # Only the equality part counts: a range on the unique column pins no single row.
        ("SELECT * FROM customers WHERE email = 'a' AND id > 5",
         [(("email", "id"), None, "btree", ())], []),
    ],
)  # fmt: skip
def test_a_candidate_an_existing_unique_index_already_pins_to_one_row(
    sql: str, expected: Expected, rejected: list[tuple[str, ...]]
) -> None:
    table = TableInfo("public", "customers", 100_000, 20_000_000, ("id", "email", "name"), (PKEY,))
    result = derive_candidates(sql, table)
    assert _shape(result.candidates) == expected
    assert [r.candidate.columns for r in result.rejected if r.candidate] == rejected
    for reason in result.rejected:
        assert reason.reason is NoSuggestionReason.ALREADY_INDEXED
        assert "customers_pkey" in reason.detail
        assert result.covered_by[reason.candidate] is PKEY  # type: ignore[index]
