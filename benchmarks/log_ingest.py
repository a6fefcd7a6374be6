"""How fast explainer reads a large PostgreSQL log, and how much memory it needs.

Generates (deterministically, from ``--seed``) a realistic stderr log with Debian's
``log_line_prefix = '%m [%p] %q%u@%d '`` and ``log_min_duration_statement = 0``: a few
hundred query shapes over a shop schema with varying literals and IN-lists, ~20% of the
executions through the extended protocol (``parse``/``bind``/``execute`` with ``DETAIL:
parameters``), multi-line ORM statements (TAB continuation lines), many interleaved
backends, BEGIN/COMMIT, connections, checkpoints and autovacuum, and the odd ERROR with
its ``STATEMENT``. The file is kept and reused when it already has the requested size and
seed, so reruns do not regenerate it.

Then it ingests the file as the pipeline does (``read_input`` then ``build_workload``, or
``--jobs N`` byte ranges in worker processes) in a child process, so the generator's memory
is not counted, and prints MB/s, lines/s, queries/s, CPU time, peak RSS, the number of
shapes, whether the hot modules are mypyc-compiled, and the speed of a bare ``for line in
file`` over the same file in the same process (a reference that makes figures of busy or
different machines comparable). When ``pgbadger`` is on PATH it parses the same file (or its first
``--pgbadger-mb`` MB) single-threaded, and the ratio is printed. Figures are recorded in
docs/benchmarks.md.

    python benchmarks/log_ingest.py [--size-mb 1024] [--path FILE] [--seed 1] [--jobs N]
        [--reader read_input|stream] [--pgbadger-mb N | --no-pgbadger] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024
GENERATOR_VERSION = 1
PREFIX = "%m [%p] %q%u@%d "

# -- the generated log --------------------------------------------------------------------

TABLES: dict[str, list[str]] = {
    "customers": ["id", "email", "name", "country", "created_at", "status", "tier"],
    "orders": ["id", "customer_id", "status", "total_cents", "created_at", "shipped_at", "region"],
    "order_items": ["id", "order_id", "product_id", "quantity", "price_cents"],
    "products": ["id", "sku", "name", "category_id", "price_cents", "stock", "active"],
    "categories": ["id", "parent_id", "name", "slug"],
    "reviews": ["id", "product_id", "customer_id", "rating", "created_at", "body"],
    "payments": ["id", "order_id", "amount_cents", "method", "status", "created_at"],
    "shipments": ["id", "order_id", "carrier", "tracking", "status", "shipped_at"],
    "sessions": ["id", "customer_id", "token", "expires_at", "ip"],
    "events": ["id", "session_id", "kind", "payload", "created_at"],
    "inventory": ["id", "product_id", "warehouse_id", "quantity", "updated_at"],
    "warehouses": ["id", "name", "region"],
    "coupons": ["id", "code", "discount_pct", "expires_at", "uses"],
    "audit_log": ["id", "actor", "action", "entity", "entity_id", "created_at"],
}
# Foreign keys a query may filter or join on: table -> (column, referenced table).
FOREIGN_KEYS: dict[str, list[tuple[str, str]]] = {
    "orders": [("customer_id", "customers")],
    "order_items": [("order_id", "orders"), ("product_id", "products")],
    "products": [("category_id", "categories")],
    "categories": [("parent_id", "categories")],
    "reviews": [("product_id", "products"), ("customer_id", "customers")],
    "payments": [("order_id", "orders")],
    "shipments": [("order_id", "orders")],
    "sessions": [("customer_id", "customers")],
    "events": [("session_id", "sessions")],
    "inventory": [("product_id", "products"), ("warehouse_id", "warehouses")],
}
STATUSES = ["new", "paid", "shipped", "delivered", "cancelled", "refunded", "on hold"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "IE", "PL", "ES", "IT", "SE"]
WORDS = ["red", "blue", "lamp", "chair", "desk", "mug", "o'brien", "garden", "tool", "café"]
USERS = [("app", "shop"), ("app", "shop"), ("app", "shop"), ("worker", "shop"), ("report", "shop")]


@dataclass
class Value:
    """A literal slot: how to render a random value of it as SQL and as a parameter."""

    kind: str  # int, big, text, status, country, ts, word, money, neg

    def raw(self, rng: random.Random) -> str:
        kind = self.kind
        if kind == "int":
            return str(int(rng.paretovariate(1.2) * 10))
        if kind == "big":
            return str(rng.randrange(1, 5_000_000))
        if kind == "neg":
            return str(-rng.randrange(1, 500))
        if kind == "money":
            return f"{rng.randrange(100, 500_000) / 100:.2f}"
        if kind == "status":
            return rng.choice(STATUSES)
        if kind == "country":
            return rng.choice(COUNTRIES)
        if kind == "word":
            return f"%{rng.choice(WORDS)}%"
        if kind == "ts":
            return (
                f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d} "
                f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
            )
        return f"user{rng.randrange(1_000_000)}@example.com"

    def sql(self, rng: random.Random) -> str:
        value = self.raw(rng)
        if self.kind in ("int", "big", "neg", "money"):
            return value
        return "'" + value.replace("'", "''") + "'"


@dataclass
class Shape:
    """One query shape: text pieces between literal slots, rendered per execution."""

    pieces: list[str]
    slots: list[Value]
    in_list: int  # index of the slot that is an IN-list, -1 if none
    weight: float
    base_ms: float
    multiline: bool
    comment: bool

    def simple(self, rng: random.Random) -> str:
        out = [self.pieces[0]]
        for i, slot in enumerate(self.slots):
            if i == self.in_list:
                n = 1 + int(rng.paretovariate(1.0)) % 40
                out.append(", ".join(slot.sql(rng) for _ in range(n)))
            else:
                out.append(slot.sql(rng))
            out.append(self.pieces[i + 1])
        text = "".join(out)
        if self.comment:
            text += f" /*app='web',route='/orders/{rng.randrange(1000)}'*/"
        return text

    def extended(self, rng: random.Random) -> tuple[str, str]:
        """SQL with $n placeholders and the DETAIL parameters line."""
        out = [self.pieces[0]]
        params: list[str] = []
        for i, slot in enumerate(self.slots):
            if i == self.in_list:
                n = 1 + int(rng.paretovariate(1.0)) % 40
                refs = []
                for _ in range(n):
                    params.append(slot.raw(rng))
                    refs.append(f"${len(params)}")
                out.append(", ".join(refs))
            else:
                params.append(slot.raw(rng))
                out.append(f"${len(params)}")
            out.append(self.pieces[i + 1])
        detail = ", ".join(
            f"${n} = '" + value.replace("'", "''") + "'" for n, value in enumerate(params, 1)
        )
        return "".join(out), detail


def _columns(rng: random.Random, table: str) -> list[str]:
    cols = TABLES[table]
    return rng.sample(cols, rng.randint(1, min(5, len(cols))))


def _slot_for(column: str) -> Value:
    if column == "status":
        return Value("status")
    if column == "country" or column == "region":
        return Value("country")
    if column.endswith("_at"):
        return Value("ts")
    if column.endswith("_cents") or column == "quantity":
        return Value("int")
    if column in ("email", "token", "sku", "code", "tracking", "actor", "name", "slug"):
        return Value("email")
    if column.endswith("id"):
        return Value("big")
    return Value("int")


def make_shapes(rng: random.Random, count: int) -> list[Shape]:
    """``count`` query shapes of a dozen families over the shop schema."""
    shapes: list[Shape] = []
    tables = list(TABLES)
    while len(shapes) < count:
        table = rng.choice(tables)
        family = rng.randrange(12)
        multiline = rng.random() < 0.25
        nl = "\n" if multiline else " "
        alias = table[0]
        cols = _columns(rng, table)
        select = ", ".join(f"{alias}.{c} AS {table}_{c}" if multiline else c for c in cols)
        src = f"{table} AS {alias}" if multiline else table
        prefix = f"{alias}." if multiline else ""

        def col(column: str, prefix: str = prefix) -> str:
            return prefix + column

        pieces: list[str]
        slots: list[Value]
        in_list = -1
        if family == 0:  # primary key lookup
            pieces = [f"SELECT {select}{nl}FROM {src}{nl}WHERE {col('id')} = ", ""]
            slots = [Value("big")]
        elif family == 1:  # foreign key, newest first
            fks = FOREIGN_KEYS.get(table)
            if not fks:
                continue
            fk, _ = rng.choice(fks)
            order = rng.choice([c for c in TABLES[table] if c.endswith("_at")] or ["id"])
            pieces = [
                f"SELECT {select}{nl}FROM {src}{nl}WHERE {col(fk)} = ",
                f"{nl}ORDER BY {col(order)} DESC{nl}LIMIT ",
                "",
            ]
            slots = [Value("big"), Value("int")]
        elif family == 2:  # IN-list
            pieces = [f"SELECT {select}{nl}FROM {src}{nl}WHERE {col('id')} IN (", ")"]
            slots = [Value("big")]
            in_list = 0
        elif family == 3:  # filter + range
            filt = rng.choice(TABLES[table][1:])
            rng_col = rng.choice([c for c in TABLES[table] if c.endswith("_at")] or ["id"])
            pieces = [
                f"SELECT {select}{nl}FROM {src}{nl}WHERE {col(filt)} = ",
                f" AND {col(rng_col)} >= ",
                f"::timestamptz{nl}ORDER BY {col(rng_col)}{nl}LIMIT 50",
            ]
            slots = [_slot_for(filt), Value("ts")]
        elif family == 4:  # join to a referenced table
            fks = FOREIGN_KEYS.get(table)
            if not fks:
                continue
            fk, ref = rng.choice(fks)
            rcol = rng.choice(TABLES[ref][1:])
            pieces = [
                f"SELECT t.{cols[0]}, r.{rcol}{nl}FROM {table} t{nl}"
                f"JOIN {ref} r ON r.id = t.{fk}{nl}WHERE r.{rcol} = ",
                " AND t.id > ",
                "",
            ]
            slots = [_slot_for(rcol), Value("big")]
        elif family == 5:  # aggregate
            by = rng.choice(TABLES[table][1:])
            pieces = [
                f"SELECT {by}, count(*), max(id){nl}FROM {table}{nl}WHERE id > ",
                f"{nl}GROUP BY {by}{nl}HAVING count(*) > ",
                f"{nl}ORDER BY 2 DESC",
            ]
            slots = [Value("big"), Value("int")]
        elif family == 6:  # update by id
            target = rng.choice(TABLES[table][1:])
            pieces = [f"UPDATE {table} SET {target} = ", ", id = id WHERE id = ", ""]
            slots = [_slot_for(target), Value("big")]
        elif family == 7:  # insert returning id
            icols = TABLES[table][1:]
            pieces = [f"INSERT INTO {table} ({', '.join(icols)}) VALUES ("]
            pieces += [", "] * (len(icols) - 1) + [") RETURNING id"]
            slots = [_slot_for(c) for c in icols]
        elif family == 8:  # delete old rows
            ts_col = rng.choice([c for c in TABLES[table] if c.endswith("_at")] or ["id"])
            pieces = [f"DELETE FROM {table} WHERE {ts_col} < ", ""]
            slots = [Value("ts") if ts_col.endswith("_at") else Value("big")]
        elif family == 9:  # LIKE search
            text_col = rng.choice(
                [c for c in TABLES[table] if c in ("name", "email", "body", "payload", "slug")]
                or [TABLES[table][1]]
            )
            pieces = [
                f"SELECT {select}{nl}FROM {src}{nl}WHERE {col(text_col)} ILIKE ",
                f"{nl}LIMIT 25",
            ]
            slots = [Value("word")]
        elif family == 10:  # = ANY(ARRAY[...]) with a negative offset
            pieces = [
                f"SELECT {select} FROM {table} WHERE id = ANY (ARRAY[",
                "]) AND id + ",
                " > 0",
            ]
            slots = [Value("big"), Value("neg")]
            in_list = 0
        else:  # count with a cast and money comparison
            num = rng.choice([c for c in TABLES[table] if c.endswith("_cents")] or ["id"])
            pieces = [f"SELECT count(*) FROM {table} WHERE {num}::numeric / 100 > ", ""]
            slots = [Value("money")]
        shapes.append(
            Shape(
                pieces=pieces,
                slots=slots,
                in_list=in_list,
                weight=rng.paretovariate(1.1),
                base_ms=rng.lognormvariate(-1.0, 1.6),
                multiline=multiline,
                comment=rng.random() < 0.05,
            )
        )
    return shapes


class _Clock:
    """Log timestamps, advancing a few ms per entry; the second's text is cached."""

    def __init__(self) -> None:
        self.ms = 0
        self._second = -1
        self._text = ""

    def tick(self, rng: random.Random) -> str:
        self.ms += rng.randrange(0, 4)
        second, millis = divmod(self.ms, 1000)
        if second != self._second:
            self._second = second
            minutes, sec = divmod(second, 60)
            hours, minute = divmod(minutes, 60)
            days, hour = divmod(hours, 24)
            self._text = f"2026-11-{1 + days % 28:02d} {hour:02d}:{minute:02d}:{sec:02d}"
        return f"{self._text}.{millis:03d} UTC"


@dataclass
class _Session:
    pid: int
    user: str
    database: str
    remaining: int
    in_transaction: int = 0  # statements left in the open transaction


def _log_lines(text: str) -> str:
    """Multi-line SQL as PostgreSQL writes it: continuation lines start with a TAB."""
    return text.replace("\n", "\n\t")


def generate_log(path: Path, size_bytes: int, seed: int) -> tuple[int, int]:
    """Write the log; returns (bytes, lines). Deterministic for a given size and seed.

    The file ends at the first entry boundary past ``size_bytes``.
    """
    rng = random.Random(seed)
    shapes = make_shapes(rng, 320)
    weights = [s.weight for s in shapes]
    cumulative = list(_accumulate(weights))
    clock = _Clock()
    target = size_bytes
    sessions: list[_Session] = []
    next_pid = 20000
    written = lines = 0
    chunk: list[str] = []
    chunk_bytes = 0

    def new_session() -> _Session:
        nonlocal next_pid
        next_pid += rng.randrange(1, 40)
        user, database = rng.choice(USERS)
        return _Session(next_pid, user, database, int(rng.paretovariate(0.8) * 20))

    with open(path, "w", encoding="utf-8", newline="\n") as out:
        while written + chunk_bytes < target:
            if len(sessions) < 150 or rng.random() < 0.002:
                session = new_session()
                sessions.append(session)
                entries = _connect(clock, rng, session)
            else:
                session = sessions[rng.randrange(len(sessions))]
                if session.remaining <= 0 and not session.in_transaction:
                    sessions.remove(session)
                    entries = _disconnect(clock, rng, session)
                elif rng.random() < 0.0005:
                    entries = _server_message(clock, rng)
                else:
                    entries = _execution(clock, rng, session, shapes, cumulative)
            for entry in entries:
                chunk.append(entry)
                chunk_bytes += len(entry.encode("utf-8")) if not entry.isascii() else len(entry)
                lines += entry.count("\n")
            if chunk_bytes > 4 * MB:
                out.write("".join(chunk))
                written += chunk_bytes
                chunk, chunk_bytes = [], 0
        out.write("".join(chunk))
        written += chunk_bytes
    return written, lines


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _prefix(clock: _Clock, rng: random.Random, session: _Session) -> str:
    return f"{clock.tick(rng)} [{session.pid}] {session.user}@{session.database} "


def _connect(clock: _Clock, rng: random.Random, session: _Session) -> list[str]:
    port = rng.randrange(30000, 60000)
    ts = clock.tick(rng)
    return [
        f"{ts} [{session.pid}] [unknown]@[unknown] LOG:  connection received: "
        f"host=10.0.{rng.randrange(8)}.{rng.randrange(255)} port={port}\n",
        f"{_prefix(clock, rng, session)}LOG:  connection authorized: user={session.user} "
        f"database={session.database} application_name=shop-{session.user}\n",
    ]


def _disconnect(clock: _Clock, rng: random.Random, session: _Session) -> list[str]:
    return [
        f"{_prefix(clock, rng, session)}LOG:  disconnection: session time: "
        f"0:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d} "
        f"user={session.user} database={session.database} host=10.0.0.1 port=5432\n"
    ]


def _server_message(clock: _Clock, rng: random.Random) -> list[str]:
    ts = clock.tick(rng)
    if rng.random() < 0.5:
        return [
            f"{ts} [812] LOG:  checkpoint starting: time\n",
            f"{clock.tick(rng)} [812] LOG:  checkpoint complete: wrote {rng.randrange(9999)} "
            "buffers (1.2%); 0 WAL file(s) added, 0 removed, 1 recycled; write=26.9 s, "
            "sync=0.004 s, total=26.931 s; sync files=40, longest=0.002 s, average=0.001 s; "
            "distance=9012 kB, estimate=9867 kB\n",
        ]
    table = rng.choice(list(TABLES))
    return [
        f"{ts} [{rng.randrange(30000, 40000)}] LOG:  automatic vacuum of table "
        f'"shop.public.{table}": index scans: 1\n'
        f"\tpages: 0 removed, {rng.randrange(99999)} remain, 312 scanned (0.41% of total)\n"
        f"\ttuples: {rng.randrange(9999)} removed, 1883112 remain, 0 are dead but not yet "
        "removable\n"
        "\tavg read rate: 0.000 MB/s, avg write rate: 0.000 MB/s\n"
        "\tsystem usage: CPU: user: 0.02 s, system: 0.00 s, elapsed: 0.05 s\n"
    ]


def _duration(rng: random.Random, base: float) -> str:
    return f"{base * rng.lognormvariate(0.0, 0.5):.3f}"


def _execution(
    clock: _Clock,
    rng: random.Random,
    session: _Session,
    shapes: list[Shape],
    cumulative: list[float],
) -> list[str]:
    entries: list[str] = []
    if not session.in_transaction and rng.random() < 0.3:
        session.in_transaction = rng.randint(1, 6)
        entries.append(
            f"{_prefix(clock, rng, session)}LOG:  duration: {rng.random() / 20:.3f} ms  "
            "statement: BEGIN\n"
        )
        return entries
    shape = shapes[_pick(rng, cumulative)]
    if rng.random() < 0.2:
        sql, detail = shape.extended(rng)
        body = _log_lines(sql)
        for step in ("parse", "bind"):
            entries.append(
                f"{_prefix(clock, rng, session)}LOG:  duration: {rng.random() / 10:.3f} ms  "
                f"{step} <unnamed>: {body}\n"
            )
            if step == "bind":
                entries.append(f"{_prefix(clock, rng, session)}DETAIL:  parameters: {detail}\n")
        entries.append(
            f"{_prefix(clock, rng, session)}LOG:  duration: {_duration(rng, shape.base_ms)} ms  "
            f"execute <unnamed>: {body}\n"
            f"{_prefix(clock, rng, session)}DETAIL:  parameters: {detail}\n"
        )
    else:
        sql = shape.simple(rng)
        if rng.random() < 0.004:  # a failed statement: no duration line, ERROR + STATEMENT
            prefix = _prefix(clock, rng, session)
            entries.append(
                f'{prefix}ERROR:  duplicate key value violates unique constraint "x_pkey"\n'
                f"{prefix}DETAIL:  Key (id)=({rng.randrange(99999)}) already exists.\n"
                f"{prefix}STATEMENT:  {_log_lines(sql)}\n"
            )
            if session.in_transaction:
                session.in_transaction = 1  # the transaction ends with ROLLBACK below
        else:
            entries.append(
                f"{_prefix(clock, rng, session)}LOG:  duration: "
                f"{_duration(rng, shape.base_ms)} ms  statement: {_log_lines(sql)}\n"
            )
    session.remaining -= 1
    if session.in_transaction:
        session.in_transaction -= 1
        if not session.in_transaction:
            word = "ROLLBACK" if entries[-1].find("STATEMENT:") >= 0 else "COMMIT"
            entries.append(
                f"{_prefix(clock, rng, session)}LOG:  duration: {rng.random() / 5:.3f} ms  "
                f"statement: {word}\n"
            )
    return entries


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    point = rng.random() * cumulative[-1]
    low, high = 0, len(cumulative) - 1
    while low < high:
        mid = (low + high) // 2
        if cumulative[mid] < point:
            low = mid + 1
        else:
            high = mid
    return low


def ensure_log(path: Path, size_mb: int, seed: int) -> tuple[int, int, float]:
    """The log at ``path``, generated unless a previous run left one of this size and seed.

    Returns (bytes, lines, seconds spent generating; 0 when reused).
    """
    meta_path = path.with_name(path.name + ".meta.json")
    wanted = {"version": GENERATOR_VERSION, "size_mb": size_mb, "seed": seed}
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if {k: meta.get(k) for k in wanted} == wanted and meta.get("bytes") == path.stat().st_size:
            return int(meta["bytes"]), int(meta["lines"]), 0.0
    started = time.perf_counter()
    size, lines = generate_log(path, size_mb * MB, seed)
    meta_path.write_text(json.dumps({**wanted, "bytes": size, "lines": lines}))
    return size, lines, time.perf_counter() - started


# -- ingestion (in a child process) -------------------------------------------------------


def raw_read_seconds(path: str) -> float:
    """Seconds to iterate over the file's lines as the reader opens it, doing nothing
    (the best of three passes).

    The reference that makes figures of a busy or slower machine comparable: explainer's
    MB/s over this one's, measured in the same process just before (it also leaves the file
    in the page cache, so neither run pays for the disk).
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with open(path, encoding="utf-8", errors="replace", newline="\n") as lines:
            for _ in lines:
                pass
        best = min(best, time.perf_counter() - started)
    return best


def ingest(path: str, jobs: int, reader: str) -> dict[str, Any]:
    """Read and group ``path``; the numbers the parent prints. Runs in the child process."""
    from explainer.capture import PgLogReader, read_input, records
    from explainer.workload import build_workload

    raw_s = raw_read_seconds(path)
    started = time.perf_counter()
    cpu0 = time.process_time()
    if jobs > 1:
        from explainer.workload.parallel import build_workload_parallel

        workload, stats = build_workload_parallel(path, jobs=jobs)
        lines_read, queries = stats.lines_read, stats.queries
    elif reader == "stream":
        log_reader = PgLogReader(path)
        workload = build_workload(log_reader)
        lines_read, queries = log_reader.stats.lines_read, log_reader.stats.queries
    else:
        captured, stats = read_input(path)
        workload = build_workload(captured)
        lines_read, queries = stats.lines_read, stats.queries
        del captured
    wall = time.perf_counter() - started
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        # mypyc-compiled modules (an extension module's file is not a .py).
        "compiled": not str(records.__file__).endswith(".py"),
        "raw_read_s": raw_s,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu0 + children.ru_utime + children.ru_stime,
        "lines": lines_read,
        "queries": queries,
        "calls": workload.calls,
        "groups": len(workload.groups),
        "utility_groups": len(workload.utility),
        "peak_rss_mb": self_usage.ru_maxrss / 1024,
        "worker_peak_rss_mb": children.ru_maxrss / 1024,
    }


def run_child(path: Path, jobs: int, reader: str, profile: str | None) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--path",
        str(path),
        "--jobs",
        str(jobs),
        "--reader",
        reader,
    ]
    if profile:
        command += ["--profile", profile]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"ingest failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child_main(args: argparse.Namespace) -> None:
    run: Callable[[], dict[str, Any]] = lambda: ingest(str(args.path), args.jobs, args.reader)  # noqa: E731
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(run)
        profiler.dump_stats(args.profile)
    else:
        result = run()
    print(json.dumps(result))


# -- pgbadger -----------------------------------------------------------------------------


def head_of_log(path: Path, megabytes: int, workdir: Path) -> tuple[Path, int]:
    """The first ``megabytes`` MB of the log, cut before a line that starts an entry."""
    out = workdir / f"head-{megabytes}mb.log"
    limit = megabytes * MB
    written = 0
    with open(path, "rb") as src, open(out, "wb") as dst:
        for line in src:
            if written >= limit and line[:1].isdigit():
                break
            dst.write(line)
            written += len(line)
    return out, written


def run_pgbadger(path: Path, megabytes: int | None) -> dict[str, Any] | None:
    exe = shutil.which("pgbadger")
    if exe is None:
        return None
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="explainer-pgbadger-") as tmp:
        workdir = Path(tmp)
        target, size = path, path.stat().st_size
        if megabytes is not None and megabytes * MB < size:
            target, size = head_of_log(path, megabytes, workdir)
        command = [
            exe,
            "--format",
            "stderr",
            "--prefix",
            PREFIX,
            "--jobs",
            "1",
            "--quiet",
            "--outfile",
            str(workdir / "report.txt"),
            str(target),
        ]
        # Through a fresh Python whose only child is pgbadger, so that the children's
        # peak RSS it reports is pgbadger's (ours includes the ingest child).
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE_CHILD, *command],
            capture_output=True,
            text=True,
            check=False,
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        report = workdir / "report.txt"
        queries = None
        if report.exists():
            for line in report.read_text(errors="replace").splitlines():
                if line.startswith("Number of queries:"):
                    queries = line.split(":", 1)[1].strip()
                    break
    return {
        "version": version,
        "command": shlex.join([*command[:-3], "--outfile", "report.txt", "LOG"]),
        "bytes": size,
        **measured,
        "queries": queries,
    }


_MEASURE_CHILD = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "wall_s": wall,
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "peak_rss_mb": usage.ru_maxrss / 1024,
    "returncode": done.returncode,
    "stderr": done.stderr.strip()[-500:],
}))
"""


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="log size (default 1024)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--path", type=Path, default=None, help="where the log is kept")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (byte ranges)")
    parser.add_argument(
        "--reader",
        choices=("read_input", "stream"),
        default="read_input",
        help="read_input (the pipeline's call; returns a list) or stream (PgLogReader)",
    )
    parser.add_argument(
        "--pgbadger-mb",
        type=int,
        default=None,
        help="time pgbadger on the first N MB only (it is slow)",
    )
    parser.add_argument("--no-pgbadger", action="store_true")
    parser.add_argument("--profile", default=None, help="write cProfile stats of the ingest")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child_main(args)
        return

    path = args.path or Path(tempfile.gettempdir()) / (
        f"explainer-bench-{args.size_mb}mb-seed{args.seed}.log"
    )
    size, lines, gen_s = ensure_log(path, args.size_mb, args.seed)
    how = f"generated in {gen_s:.1f} s" if gen_s else "reused"
    print(f"log:       {path} ({size / MB:,.1f} MB, {lines:,} lines, {how})")

    result = run_child(path, args.jobs, args.reader, args.profile)
    mb_s = size / MB / result["wall_s"]
    mode = f"--jobs {args.jobs}" if args.jobs > 1 else f"1 process, {args.reader}"
    mode += ", compiled" if result["compiled"] else ", pure Python"
    print(
        f"explainer: {result['wall_s']:.2f} s wall, {result['cpu_s']:.2f} s CPU ({mode}): "
        f"{mb_s:.1f} MB/s, {result['lines'] / result['wall_s']:,.0f} lines/s, "
        f"{result['queries'] / result['wall_s']:,.0f} queries/s"
    )
    print(
        f"           {result['queries']:,} queries -> {result['groups']} shapes "
        f"(+{result['utility_groups']} utility); peak RSS {result['peak_rss_mb']:.0f} MB"
        + (
            f" (+ workers, largest {result['worker_peak_rss_mb']:.0f} MB each)"
            if args.jobs > 1
            else ""
        )
    )
    raw_mb_s = size / MB / result["raw_read_s"]
    print(
        f"reference: `for line in file` {raw_mb_s:,.0f} MB/s in the same process; "
        f"explainer is {mb_s / raw_mb_s:.1%} of it"
    )
    if args.no_pgbadger:
        return
    badger = run_pgbadger(path, args.pgbadger_mb)
    if badger is None:
        print("pgbadger:  not on PATH (apt-get install pgbadger), skipped")
        return
    if badger["returncode"] != 0:
        print(f"pgbadger:  failed ({badger['returncode']}): {badger['stderr']}")
        return
    badger_mb_s = badger["bytes"] / MB / badger["wall_s"]
    part = (
        f"first {badger['bytes'] / MB:,.0f} MB of the log"
        if badger["bytes"] < size
        else "the whole log"
    )
    print(
        f"pgbadger:  {badger['version']}, {part}: {badger['wall_s']:.2f} s wall, "
        f"{badger['cpu_s']:.2f} s CPU, {badger_mb_s:.2f} MB/s, peak RSS "
        f"{badger['peak_rss_mb']:.0f} MB, {badger['queries'] or '?'} queries"
    )
    print(f"           {badger['command']}")
    print(f"ratio:     explainer is {mb_s / badger_mb_s:.1f}x pgbadger's MB/s")


if __name__ == "__main__":
    main()
