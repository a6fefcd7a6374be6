"""Reading a log in byte ranges (and processes) gives the workload one pass gives."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from explainer.capture import CapturedQuery, PgLogReader
from explainer.capture.model import CaptureStats
from explainer.capture.split import entry_starts, read_range, split_log, splittable
from explainer.workload import (
    DurationSample,
    QueryGroup,
    Workload,
    build_workload,
    fingerprint,
)
from explainer.workload.model import RESERVOIR_SIZE, example_rank, heaviest_first
from explainer.workload.parallel import build_workload_parallel, ingest_ranges

ROOT = Path(__file__).parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "logs" / "generated"


def _benchmark_module() -> ModuleType:
    """benchmarks/log_ingest.py, for its deterministic log generator."""
    spec = importlib.util.spec_from_file_location("log_ingest", ROOT / "benchmarks/log_ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["log_ingest"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lmds_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~1,000 entries of the benchmark's log: extended protocol, DETAILs, ERRORs..."""
    path = tmp_path_factory.mktemp("logs") / "lmds.log"
    _benchmark_module().generate_log(path, 160_000, 3)
    return path


@pytest.fixture(scope="module")
def log_statement_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``log_statement = all`` + ``log_duration`` on a busy server: a statement waits for
    its duration across other backends' entries, and some backend always has one open."""
    path = tmp_path_factory.mktemp("logs") / "log_statement.log"
    path.write_text(_log_statement_lines(random.Random(5), 1500), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def quiet_log_statement_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same on a server that is idle now and then (every backend between statements)."""
    path = tmp_path_factory.mktemp("logs") / "quiet_log_statement.log"
    path.write_text(_log_statement_lines(random.Random(6), 1500, quiet_every=40), "utf-8")
    return path


def _log_statement_lines(rng: random.Random, entries: int, quiet_every: int = 0) -> str:
    open_pids: dict[int, str] = {}
    lines = []
    winding_down = False
    for n in range(entries):
        winding_down = (winding_down or (quiet_every and n % quiet_every == 0)) and bool(open_pids)
        # Winding down: finish what runs, start nothing.
        pid = next(iter(open_pids)) if winding_down else rng.randrange(100, 112)
        when = f"2026-11-21 10:{n // 600 % 60:02d}:{n // 10 % 60:02d}.{n % 1000:03d} UTC"
        prefix = f"{when} [{pid}] app@shop"
        sql = open_pids.pop(pid, None)
        if sql is None:
            table = rng.choice(["orders", "customers", "items"])
            text = f"SELECT *\n\tFROM {table}\n\tWHERE id = {rng.randrange(999)}"
            if rng.random() < 0.3:
                text = f"UPDATE {table} SET n = n + 1 WHERE id IN ({rng.randrange(9)}, 3)"
            lines.append(f"{prefix} LOG:  statement: {text}")
            open_pids[pid] = text
        elif rng.random() < 0.05:
            lines.append(f'{prefix} ERROR:  relation "x" does not exist at character 15')
            lines.append(f"{prefix} STATEMENT:  {sql}")
        else:
            lines.append(f"{prefix} LOG:  duration: {rng.random() * 10:.3f} ms")
    return "\n".join(lines) + "\n"


def one_pass(path: Path) -> tuple[Workload, CaptureStats]:
    reader = PgLogReader(str(path))
    return build_workload(reader), reader.stats


def _by_fingerprint(workload: Workload) -> dict[str, QueryGroup]:
    return {group.fingerprint: group for group in (*workload.groups, *workload.utility)}


def assert_same_workload(expected: Workload, actual: Workload, *, exact: bool = True) -> None:
    """Counts always; with ``exact`` also the example's rank and the duration sample.

    Samples are only checked for being up to five distinct executions of the group: the
    reader hands out an ``execute`` when its backend takes its next step, so near a cut
    executions come out in another order, and "the first five" can be others.
    """
    left, right = _by_fingerprint(expected), _by_fingerprint(actual)
    assert left.keys() == right.keys()
    for key, want in left.items():
        got = right[key]
        assert (got.calls, got.timed_calls, got.max_ms) == (
            want.calls,
            want.timed_calls,
            want.max_ms,
        ), want.example.sql
        assert got.total_ms == pytest.approx(want.total_ms, rel=1e-9)
        assert (got.first_seen, got.last_seen, got.sessions, got.is_utility) == (
            want.first_seen,
            want.last_seen,
            want.sessions,
            want.is_utility,
        )
        assert got.durations.seen == want.durations.seen
        if not exact:
            continue
        assert example_rank(got.example) == example_rank(want.example)
        assert len(got.samples) == len(want.samples)
        assert len({(q.sql, q.parameters) for q in got.samples}) == len(got.samples)
        assert all(fingerprint(q.sql) == key for q in got.samples)
        if want.durations.seen <= RESERVOIR_SIZE:
            assert sorted(got.durations.values) == sorted(want.durations.values)
    # Ranked alike. Totals summed in another order may differ in the last bits, which
    # decides between two groups whose totals are equal to the nanosecond: compare the
    # rankings with totals rounded, ties in fingerprint order.
    assert _ranking(actual) == _ranking(expected)


def _ranking(workload: Workload) -> list[list[tuple[bool, float, int, str]]]:
    rankings = []
    for part in (workload.groups, workload.utility):
        assert part == sorted(part, key=heaviest_first)
        keys = [(*heaviest_first(g)[:1], round(heaviest_first(g)[1], 6), -g.calls) for g in part]
        rankings.append(sorted((*key, g.fingerprint) for key, g in zip(keys, part, strict=True)))
    return rankings


def assert_same_stats(expected: CaptureStats, actual: CaptureStats) -> None:
    assert (actual.lines_read, actual.queries) == (expected.lines_read, expected.queries)
    assert actual.skip_reasons == expected.skip_reasons


def _ranges(cuts: list[int], size: int) -> list[tuple[int, int]]:
    points = sorted({0, *cuts, size})
    return list(itertools.pairwise(points))


# -- log_min_duration_statement logs: any entry boundary is a good cut ---------------------


def test_cut_at_every_entry_start_keeps_the_counts(lmds_log: Path) -> None:
    """Every entry in its own range, DETAIL and STATEMENT lines included: no statement is
    lost or counted twice, even where a cut separates an execution from its parameters."""
    expected, expected_stats = one_pass(lmds_log)
    cuts = entry_starts(lmds_log)
    assert len(cuts) > 900
    actual, stats = ingest_ranges(str(lmds_log), _ranges(cuts, lmds_log.stat().st_size))
    assert_same_workload(expected, actual, exact=False)
    assert (stats.lines_read, stats.queries) == (expected_stats.lines_read, expected_stats.queries)
    assert expected.calls == actual.calls == expected_stats.queries


def test_cut_at_every_clean_boundary_gives_the_same_workload(lmds_log: Path) -> None:
    """Cuts before each entry that is not attached to the one before (DETAIL...): the
    very same workload, parameters, examples, line numbers and skip counts included."""
    expected, expected_stats = one_pass(lmds_log)
    cuts = entry_starts(lmds_log, attached=False)
    actual, stats = ingest_ranges(str(lmds_log), _ranges(cuts, lmds_log.stat().st_size))
    assert_same_workload(expected, actual)
    assert_same_stats(expected_stats, stats)


@pytest.mark.parametrize("parts", [2, 3, 7, 40])
def test_split_log(lmds_log: Path, parts: int) -> None:
    ranges = split_log(lmds_log, parts)
    size = lmds_log.stat().st_size
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a_end == b_start for (_, a_end), (b_start, _) in itertools.pairwise(ranges))
    assert len(ranges) == parts
    starts = set(entry_starts(lmds_log, attached=False))
    assert all(start in starts for start, _ in ranges[1:])
    expected, expected_stats = one_pass(lmds_log)
    actual, stats = ingest_ranges(str(lmds_log), ranges)
    assert_same_workload(expected, actual)
    assert_same_stats(expected_stats, stats)


def test_line_numbers_stay_absolute(lmds_log: Path) -> None:
    lines = lmds_log.read_text(encoding="utf-8").splitlines()
    actual, _ = ingest_ranges(str(lmds_log), split_log(lmds_log, 5))
    for group in actual.groups:
        for query in (group.example, *group.samples):
            entry = lines[query.line - 1]
            assert f"[{query.session}]" in entry
            assert query.sql.split()[0] in entry


def test_worker_processes(lmds_log: Path) -> None:
    expected, expected_stats = one_pass(lmds_log)
    actual, stats = build_workload_parallel(lmds_log, jobs=2, min_bytes_per_job=10_000)
    assert_same_workload(expected, actual)
    assert_same_stats(expected_stats, stats)


# -- log_statement logs: a statement waits for its duration across entries ----------------


def test_split_log_cuts_where_no_statement_is_open(quiet_log_statement_log: Path) -> None:
    path = quiet_log_statement_log
    expected, expected_stats = one_pass(path)
    assert expected_stats.skip_reasons  # the log has failed statements
    for parts in (2, 5, 20):
        ranges = split_log(path, parts)
        assert len(ranges) == parts
        actual, stats = ingest_ranges(str(path), ranges)
        assert_same_workload(expected, actual)
        assert_same_stats(expected_stats, stats)


def _open_statements(path: Path, cuts: list[int]) -> tuple[int, int]:
    """How many statements a cut separates from their end: (ended by a duration, by an
    ERROR). Follows the generated log: ``statement:``, then the backend's next entry."""
    opened: dict[str, int] = {}
    by_duration = by_error = 0
    offset = 0
    for line in path.read_bytes().splitlines(keepends=True):
        text = line.decode()
        if not text.startswith("\t"):
            pid = text.split("[", 1)[1].split("]", 1)[0]
            start = opened.pop(pid, None)
            if "LOG:  statement:" in text:
                opened[pid] = offset
            elif start is not None and any(start < cut <= offset for cut in cuts):
                if "LOG:  duration:" in text:
                    by_duration += 1
                else:
                    by_error += 1
        offset += len(line)
    return by_duration, by_error


@pytest.mark.parametrize("how", ["split_log", "every_entry"])
def test_cuts_through_open_statements_lose_only_what_is_documented(
    log_statement_log: Path, how: str
) -> None:
    """A statement open at a cut is counted once, without its duration; one that then
    failed is counted although it failed. Nothing else changes."""
    path = log_statement_log
    size = path.stat().st_size
    if how == "split_log":
        ranges = split_log(path, 6)
    else:
        ranges = _ranges(entry_starts(path, attached=False), size)
    cuts = [start for start, _ in ranges[1:]]
    by_duration, by_error = _open_statements(path, cuts)
    assert by_duration > 0 and (by_error > 0 or how == "split_log")
    expected, _ = one_pass(path)
    actual, _ = ingest_ranges(str(path), ranges)
    assert actual.calls == expected.calls + by_error
    timed = sum(g.timed_calls for g in (*actual.groups, *actual.utility))
    assert timed == sum(g.timed_calls for g in (*expected.groups, *expected.utility)) - by_duration


def test_split_log_separates_few_statements(log_statement_log: Path) -> None:
    """No quiet point on a busy server: the cut chosen separates the fewest statements
    within the look-ahead, fewer than a cut at the planned byte would."""
    path = log_statement_log
    size = path.stat().st_size
    (_, cut), _ = split_log(path, 2)
    planned = min(start for start in entry_starts(path, attached=False) if start >= size // 2)
    assert sum(_open_statements(path, [cut])) <= sum(_open_statements(path, [planned]))
    assert sum(_open_statements(path, [cut])) <= 3


# -- auto_explain: a plan and its statement are two entries -------------------------------


@pytest.mark.skipif(not CORPUS.exists(), reason="shared corpus not available")
def test_split_log_keeps_plans_with_their_statements() -> None:
    """Cut anywhere, the plan before a simple-protocol statement (or after an execute)
    would make a query of its own in one range and the statement another in the next;
    split_log's cuts keep each pair in one range."""
    path = CORPUS / "pg15_stderr_auto_explain_text_json.log"
    expected, expected_stats = one_pass(path)
    naive, _ = ingest_ranges(
        str(path), _ranges(entry_starts(path, attached=False), path.stat().st_size)
    )
    assert naive.calls > expected.calls  # what a careless cut does
    for parts in (2, 3, 5, 8, 13):
        actual, stats = ingest_ranges(str(path), split_log(path, parts))
        assert_same_workload(expected, actual)
        assert_same_stats(expected_stats, stats)


# -- the pieces ---------------------------------------------------------------------------


def test_read_range_reads_lines_as_the_reader_does(tmp_path: Path) -> None:
    path = tmp_path / "odd.log"
    path.write_bytes(b"a\r\nb \xff\xfe c\n\n\tcont\r\nlast without newline")
    size = path.stat().st_size
    whole = list(read_range(path, 0, size))
    assert whole == ["a\r", "b \ufffd\ufffd c", "", "\tcont\r", "last without newline"]
    with open(path, encoding="utf-8", errors="replace", newline="\n") as stream:
        assert whole == [line.removesuffix("\n") for line in stream]
    middle = path.read_bytes().index(b"\n\tcont") + 1
    assert list(read_range(path, 0, middle)) + list(read_range(path, middle, size)) == whole


def test_read_range_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import explainer.capture.split as split

    monkeypatch.setattr(split, "CHUNK", 7)
    path = tmp_path / "chunks.log"
    lines = [f"line {n} " + "x" * (n % 13) + "é" * (n % 3) for n in range(200)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert list(read_range(path, 0, path.stat().st_size)) == lines


def test_splittable(tmp_path: Path, lmds_log: Path) -> None:
    assert splittable(lmds_log)
    compressed = tmp_path / "log.gz"
    compressed.write_bytes(gzip.compress(lmds_log.read_bytes()))
    assert not splittable(compressed)
    csv = tmp_path / "log.csv"
    csv.write_text('2026-11-21 23:45:03.115 UTC,"app","shop",101,"[local]",1,LOG,...\n')
    assert not splittable(csv)
    sql = tmp_path / "q.sql"
    sql.write_text("select 1;\n")
    assert not splittable(sql)
    assert not splittable(tmp_path / "missing.log")


def test_unsplittable_input_is_read_in_one_process(tmp_path: Path, lmds_log: Path) -> None:
    compressed = tmp_path / "log.gz"
    compressed.write_bytes(gzip.compress(lmds_log.read_bytes()))
    expected, expected_stats = one_pass(lmds_log)
    actual, stats = build_workload_parallel(compressed, jobs=2, min_bytes_per_job=10_000)
    assert (actual.calls, stats.queries) == (expected.calls, expected_stats.queries)


# -- merging ------------------------------------------------------------------------------


def _queries(rng: random.Random, count: int) -> list[CapturedQuery]:
    return [
        CapturedQuery(
            sql=f"select * from t where a = {rng.randrange(4)}",
            duration_ms=rng.choice([None, round(rng.random() * 5, 2), 1.0]),
            line=n + 1,
            session=str(rng.randrange(6)),
            timestamp=f"2026-11-21 10:00:{rng.randrange(60):02d}",
            parameters=rng.choice([(), ("1",), ("2",)]),
        )
        for n in range(count)
    ]


def _group(queries: list[CapturedQuery]) -> QueryGroup:
    group = QueryGroup("fp", queries[0])
    for query in queries:
        group.add(query)
    return group


def test_group_merge_equals_adding_one_by_one() -> None:
    rng = random.Random(9)
    for _ in range(50):
        queries = _queries(rng, rng.randrange(2, 40))
        whole = _group(queries)
        for cut in range(1, len(queries)):
            merged = _group(queries[:cut])
            merged.merge(_group(queries[cut:]))
            for name in ("calls", "timed_calls", "max_ms", "first_seen", "last_seen"):
                assert getattr(merged, name) == getattr(whole, name)
            assert merged.total_ms == pytest.approx(whole.total_ms)
            assert merged.sessions == whole.sessions
            assert merged.example is whole.example
            assert merged.samples == whole.samples
            assert merged.durations.values == whole.durations.values


def test_duration_merge_is_exact_while_it_fits() -> None:
    left, right = DurationSample(capacity=10), DurationSample(capacity=10)
    for value in range(4):
        left.add(value)
    for value in range(4, 10):
        right.add(value)
    left.merge(right)
    assert (left.seen, left.values) == (10, list(range(10)))


def test_duration_merge_beyond_capacity_is_a_fair_sample() -> None:
    """30,000 values from one side and 10,000 from the other: three quarters of the merged
    reservoir come from the first, and percentiles stay close to the true ones."""
    small, large = DurationSample(), DurationSample()
    for value in range(10_000):
        small.add(float(value))
    for value in range(10_000, 40_000):
        large.add(float(value))
    small.merge(large)
    assert small.seen == 40_000 and len(small.values) == RESERVOIR_SIZE
    from_large = sum(value >= 10_000 for value in small.values)
    assert 700 <= from_large <= 800
    p50 = small.percentile(50)
    assert p50 is not None and 18_000 <= p50 <= 22_000


def test_workload_merge_ranks_again() -> None:
    def workload(fingerprint: str, ms: float, utility: bool = False) -> Workload:
        group = QueryGroup(fingerprint, CapturedQuery("select 1"), is_utility=utility)
        group.add(CapturedQuery("select 1", duration_ms=ms))
        return Workload(groups=[] if utility else [group], utility=[group] if utility else [])

    merged = workload("a", 1.0)
    merged.merge(workload("b", 2.0), workload("a", 5.0), workload("u", 9.0, utility=True))
    assert [(g.fingerprint, g.calls, g.total_ms) for g in merged.groups] == [
        ("a", 2, 6.0),
        ("b", 1, 2.0),
    ]
    assert [g.fingerprint for g in merged.utility] == ["u"]
