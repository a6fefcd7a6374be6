"""The stderr reader's fast path reads exactly what the general path reads.

``stderr_queries`` (one regex per line, ``feed_timed``/``feed_detail`` without LogRecords)
must give the same queries, in the same order, with the same stats, as
``StatementAssembler.run(stderr_records(...))``, which builds a LogRecord of every entry
and feeds it. Both paths stay in the code, so random logs full of edge cases are read
both ways and compared; the pieces the fast path relies on are checked on their own.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from explainer.capture import records
from explainer.capture.model import CapturedQuery, CaptureStats
from explainer.capture.pglog import PgLogReader
from explainer.capture.prefix import (
    KNOWN_PREFIXES,
    TOLERANT,
    compile_fast,
    compile_prefix,
    field_getter,
    parser_for,
    with_fallback,
)
from explainer.capture.records import (
    _DURATION,
    _STATEMENT,
    _TRANSACTION_END,
    _TRANSACTION_END_HEADS,
    _TRANSACTION_START,
    _TRANSACTION_START_HEADS,
    TIMED_STEP,
    LogRecord,
    StatementAssembler,
    read_parameters,
)
from explainer.capture.stderr import stderr_queries, stderr_records

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "logs"
DEMO_LOG = Path(__file__).resolve().parents[1] / "src" / "explainer" / "demo" / "shop.log"

# -- random logs --------------------------------------------------------------------------

PREFIXES = (
    "%m [%p] %q%u@%d ",
    "%m [%p] %q%u@%d/%a ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%m %c %v %x ",
    "%m [%p] %x %v ",
    "%t [%p] ",
)
SQLS = (
    "SELECT 1",
    "select * from t where a = $1",
    "BEGIN",
    "begin",
    "START TRANSACTION",
    "\u017ftart transaction",
    "COMMIT",
    "commit;",
    "END",
    "ROLLBACK",
    "ROLLBACK TO SAVEPOINT a",
    "COMMIT PREPARED 'x'",
    "PREPARE TRANSACTION 'x'",
    "",
    "  ",
    " ; ; ",
    "SELECT 'a;' ;",
    "SELECT x plan: y",
    "SELECT plan: 1",
    "INSERT INTO t VALUES ('\u00e9')",
    "SELECT \u0661\u0662",
    "SELECT a\nFROM b\n  WHERE c",
    "SEx",
    "B",
)
NAMES = ("<unnamed>", "S_1", "py:0x7f12:", "a:b", "C_1/P_1", "", "x y")
PARAMETERS = (
    "$1 = '1'",
    "$1 = '1', $2 = NULL",
    "$1 = 'a''b', $2 = 'c'",
    "$1 = 'abc...'",
    "$1 = 'abc'...",
    "$2 = 'x', $1 = 'y'",
    "$1 = 'x', $1 = 'y'",
    "$1 = 'x', garbage $2 = 'z'",
    "$1 = 'multi\nline'",
    "$1 = ''",
    "",
    "$01 = 'x'",
    "$1 = 'x', $3 = 'z'",
)
ODD = (
    "LOG:  duration: 1 msstatement: x",
    "LOG:  duration: 1 ms  statement:",
    "LOG:  duration: 1 ms  execute x:",
    "LOG:  duration: 1 ms  unknown: x",
    "LOG:",
    "DETAIL:",
    "LOG:  duration: 1 ms  statement: x:\ny",
    "LOG:  duration: 1 ms  execute x:\ny: z",
    "ERROR:  duplicate key value violates unique constraint",
    "FATAL:  terminating connection",
    "STATEMENT:  SELECT 1",
    "HINT:  do it",
    "WARNING:  there is no transaction in progress",
    "LOG:  connection received: host=1 port=2",
    "LOG:  disconnection: session time: 0:00:01",
    "LOG:  checkpoint starting: time",
    "DETAIL:  Key (id)=(1) already exists.",
)


def _prefix(prefix: str, rng: random.Random, second: int, pid: int) -> str:
    time = f"2026-11-01 00:{second // 60 % 60:02d}:{second % 60:02d}"
    user, database, app = rng.choice(
        [("app", "shop", "web api"), (None, None, None), ("", "", ""), ("a@b", "db", "x")]
    )
    vxid, xid = rng.choice(["3/12", "3/0", "", "-1/5"]), rng.choice(["0", "123", ""])
    session = "" if user is None else f"{user}@{database}"
    if prefix == "%m [%p] %q%u@%d ":
        return f"{time}.{second % 1000:03d} UTC [{pid}] {session} ".replace("  ", " ")
    if prefix == "%m [%p] %q%u@%d/%a ":
        return f"{time}.5 UTC [{pid}] " + ("" if user is None else f"{session}/{app} ")
    if prefix.startswith("%t [%p]: "):
        keys = f"user={user or ''},db={database or ''},app={app or ''}"
        return f"{time} UTC [{pid}]: [7-1] {keys},client=h "
    if prefix == "%m %c %v %x ":
        return f"{time}.123 CEST {pid:x}.{pid % 7:x} {vxid} {xid} "
    if prefix == "%m [%p] %x %v ":
        return f"{time}.5 +03 [{pid}] {xid} {vxid} "
    return f"{time} UTC [{pid}] "


def _message(rng: random.Random, plans: bool) -> str:
    ms = rng.choice(["0.5", "12", "1.25", "\u0661\u0662", "1.", ".5"])
    gap = rng.choice(["  ", "  ", " ", "   "])
    sql = rng.choice(SQLS)
    roll = rng.random()
    if roll < 0.3:
        return f"LOG:  duration: {ms} ms{gap}statement: {sql}"
    if roll < 0.45:
        step = rng.choice(["parse", "bind", "execute", "execute", "execute fetch from"])
        name = rng.choice(NAMES)
        return f"LOG:  duration: {ms} ms{gap}{step}{' ' if name else ''}{name}: {sql}"
    if roll < 0.6:
        detail = rng.choice(["DETAIL:  parameters: ", "DETAIL:  Parameters: "])
        return detail + rng.choice(PARAMETERS)
    if roll < 0.67:
        return f"LOG:  statement: {sql}"
    if roll < 0.7:
        return f"LOG:  execute {rng.choice(NAMES)}: {sql}"
    if roll < 0.75:
        return f"LOG:  duration: {ms} ms"
    if roll < 0.8 and plans:
        text = sql.replace("\n", " ")
        plan = "Result  (cost=0.00..0.01 rows=1 width=4)"
        return f"LOG:  duration: {ms} ms  plan:\nQuery Text: {text}\n{plan}"
    if roll < 0.9:
        return rng.choice(ODD)
    return f"LOG:  duration: {ms} ms  statement: {sql}"


def random_log(seed: int, backends: int = 8) -> tuple[str, list[str]]:
    """A prefix and the lines of a log written with it (newlines, TABs, CRs and all)."""
    rng = random.Random(seed)
    prefix = rng.choice(PREFIXES)
    plans = rng.random() < 0.4
    pids = [rng.randint(100, 99999) for _ in range(rng.randint(1, backends))]
    end = "\r\n" if rng.random() < 0.1 else "\n"
    lines = ["\torphan continuation" + end] if rng.random() < 0.2 else []
    for second in range(rng.randint(1, 300)):
        first, *rest = _message(rng, plans).split("\n")
        line = _prefix(prefix, rng, second, rng.choice(pids)) + first
        if rng.random() < 0.03:
            line = "garbage " + line[:20]
        lines.append(line + end)
        lines.extend(rng.choice(["\t", "  ", ""]) + part + end for part in rest)
        if rng.random() < 0.02:
            lines.append(end)
    if lines and rng.random() < 0.2:
        lines[-1] = lines[-1].rstrip("\r\n")
    return prefix, lines


def read_both(lines: list[str], prefix: str) -> tuple[object, object]:
    """The queries and stats of ``lines`` by the fast path and by the general path."""
    parse = with_fallback(parser_for(prefix), TOLERANT)
    result = []
    for fast in (True, False):
        stats = CaptureStats()
        assembler = StatementAssembler("pg.log", stats)
        numbered = enumerate(lines, 1)
        if fast:
            queries = stderr_queries(numbered, parse, assembler, stats)
        else:
            queries = assembler.run(stderr_records(numbered, parse, stats))
        result.append(([dataclasses.astuple(query) for query in queries], stats))
    return result[0], result[1]


@pytest.mark.parametrize("seed", range(300))
def test_fast_path_reads_random_logs_like_the_general_path(seed: int) -> None:
    prefix, lines = random_log(seed)
    fast, general = read_both(lines, prefix)
    assert fast == general


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_declines_into_the_general_path(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep every few records, and a short window: the declined records and the
    released backends must come out the same too."""
    monkeypatch.setattr(records, "_SWEEP_EVERY", 3)
    monkeypatch.setattr(records, "WINDOW", 12)
    prefix, lines = random_log(1000 + seed, backends=20)
    fast, general = read_both(lines, prefix)
    assert fast == general


def _logs() -> Iterator[Path]:
    yield DEMO_LOG
    if CORPUS.is_dir():
        yield from sorted(CORPUS.glob("*.log"))
        yield from sorted((CORPUS / "generated").glob("pg15_stderr_*.log"))


@pytest.mark.parametrize("path", list(_logs()), ids=lambda path: path.name)
def test_real_logs_read_the_same_both_ways(path: Path) -> None:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    for prefix in KNOWN_PREFIXES:
        fast, general = read_both(lines, prefix)
        assert fast == general


def test_reader_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Common entries become queries without a LogRecord; the rest still do."""
    fed: list[LogRecord] = []
    feed = StatementAssembler.feed

    def spy(self: StatementAssembler, record: LogRecord) -> None:
        fed.append(record)
        feed(self, record)

    monkeypatch.setattr(StatementAssembler, "feed", spy)
    head = "2026-11-01 00:00:00.001 UTC [7] app@shop "
    log = [
        head + "LOG:  duration: 0.5 ms  statement: SELECT 1\n",
        head + "LOG:  duration: 0.1 ms  parse <unnamed>: SELECT $1\n",
        head + "LOG:  duration: 0.1 ms  bind <unnamed>: SELECT $1\n",
        head + "DETAIL:  parameters: $1 = 'a'\n",
        head + "LOG:  duration: 0.2 ms  execute <unnamed>: SELECT $1\n",
        head + "DETAIL:  parameters: $1 = 'a'\n",
        head + "LOG:  checkpoint starting: time\n",
    ]
    reader = PgLogReader(log)
    queries = list(reader)
    assert [(q.sql, q.duration_ms, q.parameters) for q in queries] == [
        ("SELECT 1", 0.5, ()),
        ("SELECT $1", 0.2, ("a",)),
    ]
    assert [record.message for record in fed] == ["checkpoint starting: time"]


# -- the pieces ---------------------------------------------------------------------------


def test_captured_query_fields_in_the_order_the_assembler_passes_them() -> None:
    names = [field.name for field in dataclasses.fields(CapturedQuery)]
    assert names[:13] == [
        "sql",
        "duration_ms",
        "source",
        "line",
        "session",
        "timestamp",
        "user",
        "database",
        "parameters",
        "replayable",
        "calls",
        "transaction",
        "application",
    ]


def test_transaction_heads_hold_every_start_the_regexes_accept() -> None:
    """The two characters a statement must start with for the regex to be tried."""
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    for words, heads in (
        (("BEGIN", "START"), _TRANSACTION_START_HEADS),
        (("COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE"), _TRANSACTION_END_HEADS),
    ):
        for word in words:
            firsts = re.findall(f"(?i){word[0]}", everything)
            seconds = re.findall(f"(?i){word[1]}", everything)
            assert {a + b for a in firsts for b in seconds} <= heads
    long_s = "\u017ftart transaction"
    assert _TRANSACTION_START.match(long_s) and long_s[:2] in _TRANSACTION_START_HEADS
    assert _TRANSACTION_END.match("commit") and "co" in _TRANSACTION_END_HEADS


LINES = [
    line.rstrip("\n")
    for _, lines in (random_log(seed) for seed in range(60))
    for line in lines
    if line[:1] not in ("", " ", "\t", "\r", "\n")
]


@pytest.mark.parametrize("prefix", sorted({*PREFIXES, *KNOWN_PREFIXES, "%n %e %Q %P%%%s|%i"}))
def test_fast_pattern_reads_the_lines_and_fields_of_the_prefix_pattern(prefix: str) -> None:
    general, fast = compile_prefix(prefix), compile_fast(prefix)
    names = ("pid", "session_id", "timestamp", "user", "database", "application", "vxid")
    read_general = field_getter(general, (*names, "xid", "severity", "message"))
    read_fast = field_getter(fast, (*names, "xid", "severity"))
    for line in LINES:
        line = line.removesuffix("\r")
        one, other = general.match(line), fast.match(line)
        assert (one is None) == (other is None), line
        if one is None or other is None:
            continue
        *fields, message = read_general(one.groups())
        assert list(read_fast(other.groups())) == fields
        assert line[other.start("body") :] == message
        kind = other.group("kind")
        if kind is None:
            assert other.group("sql") == message
        else:
            assert other.group("sql") == message[other.start("sql") - other.start("body") :]


@pytest.mark.parametrize("seed", range(20))
def test_timed_step_splits_a_message_as_duration_then_statement(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["duration: ", "1", ".5", " ms", " ", "  ", "statement", "execute", "parse"]
    pieces += ["bind", " fetch from", " <unnamed>", " a:b", ":", ": ", "\n", "x", "plan:"]
    for _ in range(2000):
        message = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        if rng.random() < 0.7:
            message = "duration: 1 ms  " + message
        fast = TIMED_STEP.match(message.split("\n")[0])
        duration = _DURATION.match(message)
        statement = None
        if duration is not None and duration.group(2) is not None:
            statement = _STATEMENT.match(duration.group(2))
        if fast is None:
            continue
        assert duration is not None and statement is not None, message
        assert (fast.group("ms"), fast.group("kind")) == (duration.group(1), statement.group(1))
        assert message[fast.end() :] == statement.group(2)


_OLD_PARAMETER = re.compile(r"(?:, )?\$(\d+) = (?:NULL|'([^']*(?:''[^']*)*)'(\.\.\.)?)")


def _read_parameters_one_by_one(text: str) -> tuple[tuple[str | None, ...], bool]:
    """read_parameters as it was: one match at a time."""
    values: dict[int, str | None] = {}
    truncated = False
    pos = 0
    match = _OLD_PARAMETER.match(text, pos)
    while match is not None:
        value = match.group(2)
        if value is not None:
            if match.group(3) is not None or value.endswith("..."):
                truncated = True
            value = value.replace("''", "'")
        values[int(match.group(1))] = value
        pos = match.end()
        match = _OLD_PARAMETER.match(text, pos)
    if not values:
        return (), False
    return tuple(values.get(n) for n in range(1, max(values) + 1)), truncated


@pytest.mark.parametrize("seed", range(10))
def test_read_parameters_reads_as_one_match_at_a_time(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["$1 = ", "$2 = ", "$3 = ", "$10 = ", "$\u0661 = ", ", ", "NULL", "'", "''"]
    pieces += ["a", "...", "x, $2 = 'y'", "\n", " ", "$", "="]
    texts = list(PARAMETERS)
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(3000)]
    for n in (1, 3, 99, 100, 101, 150):
        texts.append(", ".join(f"${i} = '{i}'" for i in range(1, n + 1)))
    for text in texts:
        assert read_parameters(text) == _read_parameters_one_by_one(text), text


def test_fast_path_counts_lines_and_skips() -> None:
    _, lines = random_log(7)
    whole = list(itertools.chain(lines, ["\tdangling\n", "not a log line\n"]))
    reader = PgLogReader(whole, log_prefix=random_log(7)[0])
    queries = list(reader)
    assert reader.stats.lines_read == len(whole)
    assert reader.stats.queries == len(queries)
    assert reader.stats.skipped == sum(reader.stats.skip_reasons.values())


@pytest.mark.parametrize("seed", range(60))
def test_reader_counts_every_query_it_yields(seed: int) -> None:
    """PgLogReader leaves the counting to the stderr reader (per batch, on both of its
    paths: a known prefix's fast path, or the tolerant parser's records)."""
    _, lines = random_log(seed)
    reader = PgLogReader(lines)
    queries = list(reader)
    assert reader.stats.queries == len(queries)
