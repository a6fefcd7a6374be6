"""How long `explainer demo` takes, stage by stage, on this machine.

Prints: server start, demo load (rows, seconds, rows/s), and the analysis of the shipped
log (shapes, seconds, suggestions with their measured speed-ups). The issue's target is a
1M+ row load "well under a minute"; the figures are recorded in docs/benchmarks.md.

    python benchmarks/demo.py [--scale 1.0] [--server auto|embedded|system]
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

from explainer.capture import read_input
from explainer.db.server import ThrowawayServer, find_binaries
from explainer.demo.data import create_demo_database
from explainer.pipeline import AnalyzeOptions, analyze_workload
from explainer.workload import build_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--server", choices=("auto", "embedded", "system"), default="auto")
    args = parser.parse_args()

    binaries = find_binaries(args.server)
    started = time.perf_counter()
    with ThrowawayServer(binaries) as server:
        start_s = time.perf_counter() - started
        dsn = server.create_database("shop")
        loaded = create_demo_database(dsn, scale=args.scale)
        log = resources.files("explainer.demo").joinpath("shop.log")
        with resources.as_file(log) as path:
            queries, _ = read_input(str(path))
        began = time.perf_counter()
        report = analyze_workload(dsn, build_workload(queries), AnalyzeOptions(verify="rollback"))
        analyze_s = time.perf_counter() - began
    total_s = time.perf_counter() - started

    print(
        f"server:   PostgreSQL {binaries.version} ({binaries.source}), started in {start_s:.2f} s"
    )
    print(
        f"load:     {loaded.total_rows:,} rows in {loaded.seconds:.2f} s "
        f"({loaded.total_rows / loaded.seconds:,.0f} rows/s, COPY + keys + VACUUM ANALYZE)"
    )
    print(
        f"analyze:  {len(report.queries)} shapes, {len(report.findings)} findings, "
        f"{len(report.suggestions)} verified suggestions in {analyze_s:.2f} s"
    )
    for suggestion in report.suggestions:
        for query_id, evidence in suggestion.evidence.items():
            if evidence.before_ms is not None and evidence.after_ms:
                print(
                    f"          {suggestion.candidate.name}: {evidence.before_ms:.2f} ms -> "
                    f"{evidence.after_ms:.3f} ms ({evidence.before_ms / evidence.after_ms:,.0f}x)"
                    f" [{query_id[:8]}]"
                )
    print(f"total:    {total_s:.2f} s (start, load, analyze, stop)")


if __name__ == "__main__":
    main()
