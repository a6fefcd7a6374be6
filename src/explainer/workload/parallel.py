"""Build the workload of a large log with several processes.

The log is cut into byte ranges at clean entry boundaries
(:func:`explainer.capture.split.split_log`; its docstring says what a cut can and cannot
lose), each range is read and grouped in a worker process, and the partial workloads are
merged in file order (:meth:`Workload.merge`). Memory per process is bounded by the
number of shapes, as in one process; CPU time is what scales.

The merged workload equals the one-process workload of the same file (same groups,
calls, timed calls, maxima, first/last seen, sessions, samples and examples) except for
the last bits of ``total_ms`` (summed in another order), the duration reservoir of groups
with more than its capacity of calls (another uniform sample, so p95 differs slightly),
and the order of groups whose ranking keys tie. Line numbers are made absolute again.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from explainer.capture import PgLogReader, open_input
from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.split import read_range, split_log, splittable
from explainer.workload import build_workload
from explainer.workload.model import Workload

MIN_BYTES_PER_JOB = 16 * 1024 * 1024
"""Smaller pieces are not worth a process."""


def build_workload_parallel(
    path: str | os.PathLike[str],
    jobs: int,
    *,
    start_method: str = "spawn",
    min_bytes_per_job: int | None = None,
) -> tuple[Workload, CaptureStats]:
    """The workload of the log at ``path``, read by up to ``jobs`` processes.

    Falls back to one process for what cannot be split (compressed files, csvlog,
    jsonlog, SQL...: :func:`~explainer.capture.read_input` then reads it) and for files
    too small to be worth it.
    """
    name = os.fspath(path)
    if not splittable(name):
        with open_input(name) as (queries, stats):
            return build_workload(queries), stats
    size = os.path.getsize(name)
    piece = MIN_BYTES_PER_JOB if min_bytes_per_job is None else min_bytes_per_job
    parts = max(1, min(jobs, size // max(piece, 1)))
    ranges = split_log(name, parts)
    if len(ranges) == 1:
        reader = PgLogReader(name)
        return build_workload(reader), reader.stats
    return ingest_ranges(name, ranges, jobs=jobs, start_method=start_method)


def ingest_ranges(
    path: str,
    ranges: Sequence[tuple[int, int]],
    *,
    jobs: int = 1,
    start_method: str = "spawn",
) -> tuple[Workload, CaptureStats]:
    """Read each byte range on its own (in ``jobs`` processes, or in this one when
    ``jobs`` is 1) and merge the results in order. Ranges must be contiguous and start
    at entry boundaries."""
    starts = [start for start, _ in ranges]
    ends = [end for _, end in ranges]
    if jobs <= 1:
        parts = [read_part(path, start, end) for start, end in ranges]
    else:
        context = multiprocessing.get_context(start_method)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            parts = list(pool.map(read_part, itertools.repeat(path), starts, ends))
    return merge_parts(parts)


def read_part(path: str, start: int, end: int) -> tuple[Workload, CaptureStats]:
    """One range's workload and reader stats (runs in a worker process)."""
    reader = PgLogReader(read_range(path, start, end), path)
    return build_workload(reader), reader.stats


def merge_parts(parts: Sequence[tuple[Workload, CaptureStats]]) -> tuple[Workload, CaptureStats]:
    """Merge partial results in file order; line numbers become absolute."""
    stats = CaptureStats()
    offset = 0
    for workload, part_stats in parts:
        if offset:
            _shift_lines(workload, offset)
        offset += part_stats.lines_read
        stats.merge(part_stats)
    merged = Workload()
    merged.merge(*(workload for workload, _ in parts))
    return merged, stats


def _shift_lines(workload: Workload, offset: int) -> None:
    """A range's line numbers count from its first line: add the lines before it."""
    queries: dict[int, CapturedQuery] = {}
    for group in (*workload.groups, *workload.utility):
        for query in (group.example, *group.samples):
            queries[id(query)] = query
    for query in queries.values():
        query.line += offset
