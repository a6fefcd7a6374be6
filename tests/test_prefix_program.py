"""The prefix program (str operations) reads exactly what the fast regex reads.

:class:`~explainer.capture.prefix.PrefixProgram` may answer only when its answer is the
regex's; otherwise it must say "unsure" and leave the line to the regex. These tests hold
it to that on hand-picked lines (malformed ones included), on every known prefix, and on
randomly damaged lines, and check that the common lines really take the program's path.
"""

from __future__ import annotations

import random

import pytest

from explainer.capture.prefix import (
    FAST_FIELDS,
    KNOWN_PREFIXES,
    FastEntry,
    compile_fast,
    compile_program,
    field_getter,
)

DEBIAN = "%m [%p] %q%u@%d "
Fields = tuple[object, ...]


def regex_read(prefix: str, line: str) -> Fields | None:
    pattern = compile_fast(prefix)
    match = pattern.match(line)
    if match is None:
        return None
    return (*field_getter(pattern, FAST_FIELDS)(match.groups()), match.start("body"))


def fields_of(entry: FastEntry) -> Fields:
    return (
        entry.pid,
        entry.session_id,
        entry.timestamp,
        entry.user,
        entry.database,
        entry.application,
        entry.vxid,
        entry.xid,
        entry.severity,
        entry.ms,
        entry.kind,
        entry.sql,
        entry.body,
    )


def program_read(prefix: str, line: str) -> Fields | None:
    """The program's fields, or None when it is unsure."""
    entry = FastEntry(prefix, use_program=True)
    assert entry.program is not None
    if not entry._run(entry.program, line):
        return None
    return fields_of(entry)


TS = "2026-11-01 00:00:00.467 UTC"

# (line, what the program reads: pid, timestamp, user, database, severity, ms, kind, sql)
READ = [
    (
        f"{TS} [20273] report@shop LOG:  duration: 0.116 ms  execute <unnamed>: SELECT 1",
        ("20273", TS, "report", "shop", "LOG", "0.116", "execute", "SELECT 1"),
    ),
    (
        f"{TS} [7] app@shop LOG:  duration: 12 ms  statement: UPDATE t SET a = ': b'",
        ("7", TS, "app", "shop", "LOG", "12", "statement", "UPDATE t SET a = ': b'"),
    ),
    (
        f"{TS} [7] app@shop LOG:  duration: 1.5 ms  execute S_1/C_2: SELECT 2",
        ("7", TS, "app", "shop", "LOG", "1.5", "execute", "SELECT 2"),
    ),
    (
        f"{TS} [7] app@shop LOG:  duration: 1.5 ms  parse <unnamed>: SELECT $1",
        ("7", TS, "app", "shop", "LOG", "1.5", "parse", "SELECT $1"),
    ),
    (
        f"{TS} [7] app@shop DETAIL:  parameters: $1 = 'a@b c'",
        ("7", TS, "app", "shop", "DETAIL", None, None, "parameters: $1 = 'a@b c'"),
    ),
    (  # postmaster lines: no user@db, the optional part is empty
        f"{TS} [81] LOG:  checkpoint starting: time",
        ("81", TS, None, None, "LOG", None, None, "checkpoint starting: time"),
    ),
    (
        f"{TS} [81] LOG:  connection received: host=10.0.0.1 user@x",
        ("81", TS, None, None, "LOG", None, None, "connection received: host=10.0.0.1 user@x"),
    ),
    (
        f"{TS} [9] [unknown]@[unknown] LOG:  connection received: host=10.0.0.140",
        (
            "9",
            TS,
            "[unknown]",
            "[unknown]",
            "LOG",
            None,
            None,
            "connection received: host=10.0.0.140",
        ),
    ),
    (  # a database with an @: the user ends at the first one
        f"{TS} [9] a@b@c ERROR:  relation does not exist",
        ("9", TS, "a", "b@c", "ERROR", None, None, "relation does not exist"),
    ),
    (  # an empty user and database
        f"{TS} [9] @ DEBUG3:  x",
        ("9", TS, "", "", "DEBUG3", None, None, "x"),
    ),
    (  # no zone, a message that is only the severity
        "2026-11-01 00:00:00.467 [9] a@b LOG:",
        ("9", "2026-11-01 00:00:00.467", "a", "b", "LOG", None, None, ""),
    ),
    (  # a duration that is not a timed step: the whole message is sql
        f"{TS} [9] a@b LOG:  duration: 3.2 ms  plan:",
        ("9", TS, "a", "b", "LOG", None, None, "duration: 3.2 ms  plan:"),
    ),
    (
        f"{TS} [9] a@b LOG:  duration: 3.2 ms",
        ("9", TS, "a", "b", "LOG", None, None, "duration: 3.2 ms"),
    ),
    (
        f"{TS} [9] a@b LOG:  duration: 3. ms  statement: x",
        ("9", TS, "a", "b", "LOG", None, None, "duration: 3. ms  statement: x"),
    ),
    (
        f"{TS} [9] a@b LOG:  duration: 3 ms  execute  : x",
        ("9", TS, "a", "b", "LOG", None, None, "duration: 3 ms  execute  : x"),
    ),
    (
        "2026-11-01 00:00:00.467 Europe/Paris [9] a@b LOG:  statement: x",
        ("9", "2026-11-01 00:00:00.467 Europe/Paris", "a", "b", "LOG", None, None, "statement: x"),
    ),
]


@pytest.mark.parametrize(("line", "expected"), READ)
def test_program_reads_common_lines_as_the_regex(line: str, expected: Fields) -> None:
    got = program_read(DEBIAN, line)
    assert got is not None, "the program should be sure of this line"
    pid, _, timestamp, user, database, _, _, _, severity, ms, kind, sql, _ = got
    assert (pid, timestamp, user, database, severity, ms, kind, sql) == expected
    assert got == regex_read(DEBIAN, line)


UNSURE = [
    f"{TS} [9] a@b:c LOG:  x",  # a colon where a severity could end the database
    f"{TS} [9] a@bLOG: LOG:  x",
    f"{TS} [9] a@b\tLOG:  x",  # a blank other than the space
    f"{TS} [\u0661] a@b LOG:  x",  # a Unicode digit: \d takes it
    f"{TS} [9] a@b LOG:  duration: 1.\u0661 ms  statement: x",
    "2026-11-01 00:00:00.467 +03 [9] a@b LOG:  x",  # numeric zones are left to the regex
    "2026-11-01 00:00:00.467 Zone\u00e9 [9] a@b LOG:  x",
    f"{TS} [9] a@b LOG:  two\nlines",
    f"{TS} [9] a@b LOG:  duration: 1 ms  execute fetch from\tx: y",
]
MALFORMED = [
    "",
    "garbage",
    f"{TS} [9]",
    f"{TS} [] a@b LOG:  x",
    f"{TS} [9] a@b LOG:x",
    f"{TS} [9] a@b LOGGING:  x",
    f"{TS} [9] a@b log:  x",
    "2026-11-01 00:00:00 UTC [9] a@b LOG:  x",  # %t's timestamp under %m
    "2026-1-01 00:00:00.467 UTC [9] a@b LOG:  x",
    f"{TS} [9] a@b ",
]


@pytest.mark.parametrize("line", UNSURE + MALFORMED)
def test_program_leaves_doubtful_and_malformed_lines_to_the_regex(line: str) -> None:
    assert program_read(DEBIAN, line) is None
    entry = FastEntry(DEBIAN, use_program=True)
    expected = regex_read(DEBIAN, line)
    assert entry.read(line) is (expected is not None)
    if expected is not None:
        assert fields_of(entry) == expected


def test_programs_of_the_known_prefixes() -> None:
    # Lazy values must end at literal text or at the severity; %a (any text) must not.
    assert compile_program("%m [%p] %q%u@%d/%a ") is None
    assert compile_program("%m [%-10u] ") is None  # padding
    assert compile_program("%m %c ") is None
    assert compile_program("%m %u%d ") is None
    for prefix in KNOWN_PREFIXES:
        assert (compile_program(prefix) is None) is ("%a" in prefix), prefix


def _line_of(prefix: str, rng: random.Random) -> str:
    """A plausible line of ``prefix`` (the escapes the program reads)."""
    # Few distinct seconds, so that lines in a row often share one (the program
    # remembers the date and time it read last).
    values = {
        "m": f"2026-11-0{rng.randint(1, 2)} 1{rng.randint(0, 1)}:00:0{rng.randint(0, 2)}"
        + f".{rng.randint(0, 999):03d}"
        + rng.choice([" UTC", " CEST", "", " Europe/Paris"]),
        "t": f"2026-11-01 12:00:0{rng.randint(0, 9)}" + rng.choice([" UTC", ""]),
        "p": str(rng.randint(1, 99999)),
        "l": str(rng.randint(1, 50)),
        "u": rng.choice(["app", "[unknown]", "", "u.v"]),
        "d": rng.choice(["shop", "[unknown]", "", "db-1"]),
        "r": "10.0.0.1(5432)",
        "h": "10.0.0.1",
        "a": "psql",
        "q": "",
    }
    head = prefix
    for letter, value in values.items():
        head = head.replace(f"%{letter}", value)
    message = rng.choice(
        [
            "LOG:  duration: 0.5 ms  statement: SELECT 1",
            "LOG:  duration: 12.25 ms  execute <unnamed>: SELECT $1",
            "LOG:  duration: 2 ms  bind S_1: SELECT a",
            "DETAIL:  parameters: $1 = 'x'",
            'ERROR:  syntax error at or near "x"',
            "STATEMENT:  SELEC 1",
            "LOG:  checkpoint complete",
        ]
    )
    return head + message


MUTATIONS = " :@[]-./+,=0123456789LOGDETAIL ms\t\u00e9\u0661\n"


@pytest.mark.parametrize("prefix", [p for p in KNOWN_PREFIXES if compile_program(p) is not None])
def test_program_agrees_with_the_regex_on_damaged_lines(prefix: str) -> None:
    rng = random.Random(f"{prefix}")
    entry = FastEntry(prefix, use_program=True)
    sure = 0
    for _ in range(3000):
        line = _line_of(prefix, rng)
        chars = list(line)
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            at = rng.randrange(len(chars) + 1)
            action = rng.random()
            if action < 0.4 and at < len(chars):
                del chars[at]
            elif action < 0.8:
                chars.insert(at, rng.choice(MUTATIONS))
            elif at < len(chars):
                chars[at] = rng.choice(MUTATIONS)
        line = "".join(chars)
        expected = regex_read(prefix, line)
        got = program_read(prefix, line)
        if got is not None:
            sure += 1
            assert got == expected, line
        assert entry.read(line) is (expected is not None), line
        if expected is not None:
            assert fields_of(entry) == expected, line
    # Most lines, even damaged, are read by the program, not the regex.
    assert sure > 1500


def test_a_remembered_second_is_used_only_for_the_same_characters() -> None:
    # The program keeps the date and time it read last; a line that differs from it
    # anywhere in those 19 characters is checked in full again.
    entry = FastEntry(DEBIAN, use_program=True)
    assert entry.program is not None
    tail = " UTC [7] app@shop LOG:  duration: 1.5 ms  statement: SELECT 1"
    lines = [
        "2026-11-01 10:00:00.001" + tail,
        "2026-11-01 10:00:00.002" + tail,  # the same second: remembered
        "2026-11-01 10:00:0x.003" + tail,  # damaged in the seconds
        "2026-11-01 10:00:00.004" + tail,
        "2026-11-01 10:00:01.005" + tail,  # the next second
        "2026-11-01\t10:00:01.006" + tail,  # damaged in the separator
        "2026-11-01 10:00:01" + tail,  # no fraction for %m
        "2026-11-01 10:00:01.007" + tail,
    ]
    for line in lines:
        expected = regex_read(DEBIAN, line)
        assert entry._run(entry.program, line) is (expected is not None), line
        if expected is not None:
            assert fields_of(entry) == expected, line
    assert [regex_read(DEBIAN, line) is not None for line in lines] == [
        True, True, False, True, True, False, False, True
    ]  # fmt: skip
