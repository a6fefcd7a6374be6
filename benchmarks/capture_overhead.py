"""What the in-app capture (``explainer.capture.install``) adds to an application's time.

A realistic ORM loop, run against a real PostgreSQL: N statements, each a
``session.execute(select(Customer).where(Customer.id == ...)).scalar_one()`` of a
different row (the identity map never answers), with a commit every 100 statements, so
the pool's checkin/checkout events and transactions come with them. The loop runs in one
process in three modes, alternating (the order rotates every round, so a slow spell of a
shared machine lands on every mode alike), each timed whole (install, the loop, remove,
which writes the last records):

- ``off``: no hook;
- ``on``: the hook with call sites (the default);
- ``no sites``: the hook with ``call_sites=False``.

It prints each mode's median wall time over the rounds, its ratio to ``off`` and the time
added per statement; the fastest run's ratio (the least disturbed by other work); the
median CPU time of the process (both its threads: the capture writes from its own), and
what the capture wrote. The issue's target: under 5% added wall
time with call sites on. Figures are recorded in docs/benchmarks.md.

    python benchmarks/capture_overhead.py [--statements 10000] [--rounds 7]
        [--dsn postgresql://...] [--server auto|embedded|system]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy
from sqlalchemy import String, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from explainer.capture import install
from explainer.db.server import ThrowawayServer, find_binaries

ROWS = 5_000
COMMIT_EVERY = 100


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "bench_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    email: Mapped[str] = mapped_column(String(80))
    city: Mapped[str] = mapped_column(String(40))


def connect(dsn: str) -> Engine:
    """An engine on any DSN psycopg accepts (URI or key=value), through psycopg 3."""
    return sqlalchemy.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))


def load(engine: Engine) -> None:
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(
            Customer(id=i, name=f"customer {i}", email=f"c{i}@example.com", city=f"city {i % 97}")
            for i in range(1, ROWS + 1)
        )
        session.commit()


def workload(engine: Engine, statements: int) -> None:
    """The application: one ORM select per statement, a commit every 100."""
    session = Session(engine)
    try:
        for i in range(statements):
            customer = session.execute(
                select(Customer).where(Customer.id == i % ROWS + 1)
            ).scalar_one()
            assert customer.id == i % ROWS + 1
            if i % COMMIT_EVERY == COMMIT_EVERY - 1:
                session.commit()
        session.commit()
    finally:
        session.close()


def timed(
    engine: Engine, statements: int, capture_to: Path | None, call_sites: bool
) -> tuple[float, float]:
    """Wall time and this process's CPU time of one run."""
    if capture_to is not None:
        capture_to.unlink(missing_ok=True)  # each run writes its own file
    started, cpu = time.perf_counter(), time.process_time()
    capture = None if capture_to is None else install(engine, capture_to, call_sites=call_sites)
    try:
        workload(engine, statements)
    finally:
        if capture is not None:
            capture.remove()
    return time.perf_counter() - started, time.process_time() - cpu


@contextmanager
def database(dsn: str | None, server: str) -> Iterator[tuple[str, str]]:
    if dsn is not None:
        yield dsn, "given DSN"
        return
    binaries = find_binaries(server)  # type: ignore[arg-type]
    with ThrowawayServer(binaries) as running:
        yield (
            running.create_database("capture_bench"),
            f"PostgreSQL {binaries.version} ({binaries.source}), throwaway",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dsn", help="an existing database (its user must create tables)")
    parser.add_argument("--server", choices=("auto", "embedded", "system"), default="auto")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5 (medians of fewer runs mean little)")

    with database(args.dsn, args.server) as (dsn, where), tempfile.TemporaryDirectory() as tmp:
        engine = connect(dsn)
        load(engine)
        folder = Path(tmp)
        modes: dict[str, Callable[[int], tuple[float, float]]] = {
            "off": lambda n: timed(engine, n, None, True),
            "on": lambda n: timed(engine, n, folder / f"on-{n}.jsonl", True),
            "no sites": lambda n: timed(engine, n, folder / f"nosites-{n}.jsonl", False),
        }
        for run in modes.values():  # warm-up: caches, prepared statements, the pool
            run(min(args.statements, 1_000))
        times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
        order = list(modes)
        for round_number in range(args.rounds):
            for mode in order[round_number % 3 :] + order[: round_number % 3]:
                times[mode].append(modes[mode](args.statements))
        last = folder / f"on-{args.statements}.jsonl"
        engine.dispose()

        load1, load5, _ = os.getloadavg()
        print(f"server:     {where}")
        print(
            f"machine:    {os.cpu_count()} cores, load average {load1:.2f} / {load5:.2f} "
            f"(1 / 5 min) after the runs; Python {sys.version.split()[0]}, "
            f"SQLAlchemy {sqlalchemy.__version__}"
        )
        print(
            f"workload:   {args.statements:,} ORM selects by primary key "
            f"(commit every {COMMIT_EVERY}), {args.rounds} rounds per mode, alternating"
        )
        base = statistics.median(wall for wall, _ in times["off"])
        base_cpu = statistics.median(cpu for _, cpu in times["off"])
        base_min = min(wall for wall, _ in times["off"])
        for mode, values in times.items():
            median = statistics.median(wall for wall, _ in values)
            fastest = min(wall for wall, _ in values)
            cpu = statistics.median(cpu for _, cpu in values)
            print(
                f"{mode:>9}:  wall median {median:.3f} s, ratio {median / base:.3f} "
                f"({(median - base) / args.statements * 1e6:+.1f} µs/statement); "
                f"fastest {fastest:.3f} s, ratio {fastest / base_min:.3f}; "
                f"CPU median {cpu:.3f} s, ratio {cpu / base_cpu:.3f}"
            )
            print(f"{'':>9}   wall runs [{', '.join(f'{wall:.2f}' for wall, _ in values)}]")
        if last.exists():
            lines = last.read_text(encoding="utf-8").splitlines()
            kinds = [line.split('"type":"', 1)[-1].split('"', 1)[0] for line in lines[1:]]
            print(
                f"capture:    {last.stat().st_size / 1e6:.2f} MB, {len(lines):,} lines "
                f"({kinds.count('statement'):,} statements, {kinds.count('pool'):,} pool "
                f"events) in the last 'on' run"
            )


if __name__ == "__main__":
    main()
