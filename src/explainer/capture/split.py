"""Split a large stderr log into byte ranges that can be read independently.

``explainer.workload.parallel`` reads each range in its own process. A range must start
where the reader would start a new entry anyway, or a statement would be cut in two: so
every cut is at the start of a line that opens a log entry (a timestamp, then the
``[pid]`` of the prefix; never a TAB continuation line).

Some state of the reader spans entries, and a cut must not fall inside it:

- a message's ``DETAIL``/``HINT``/``CONTEXT``/``STATEMENT``... belongs to the entry
  before it (an execution's parameters, a failed statement's text): no cut before one;
- with ``log_statement`` + ``log_duration``, a backend logs ``statement: SQL`` when it
  starts and a bare ``duration:`` when it ends, with other backends' entries between. A
  cut between them would leave the statement without its duration (counted, untimed) and,
  if it then failed, count it although it failed;
- with ``auto_explain``, a plan is logged before its simple-protocol statement's entry,
  and after an ``execute`` (when the backend takes its next step): a cut between them
  would count the execution twice, once from the plan and once from the statement.

So a cut is only made where no backend is inside such a pair, judged by following the
entries (like the reader, per backend) from ``LOOKBACK`` bytes before the cut: a
statement that has been running for more than that much log at a cut point is not seen.
Logs written with ``log_min_duration_statement`` alone (one entry per execution, the
common setting) have no such pairs, and any entry boundary but DETAIL & co. is exact.
What a cut can still change is the order in which the reader hands out executions near
it (it holds an ``execute`` until its backend's next step, for a plan that may follow),
hence which five executions a group keeps as samples: never a count.

When no clean cut exists within ``LOOKAHEAD`` bytes after the planned one, the entry start
that separates the fewest pairs is used. That is the usual case with ``log_statement``
on a busy server, where some backend always has a statement running: each statement open
at a cut is then counted once but without its duration, and one that then failed is
counted although it failed. With ``--jobs N`` that is at most N - 1 cuts times the number
of statements running at once.

Only plain stderr logs are split: compressed files cannot be read from the middle, and
csvlog/jsonlog entries are delimited differently. :func:`splittable` tells.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from typing import BinaryIO

LOOKBACK = 2 * 1024 * 1024
LOOKAHEAD = 4 * 1024 * 1024
CHUNK = 4 * 1024 * 1024

# A line that starts a stderr entry: a timestamp, anything but a comma (csvlog), [pid.
_ENTRY = re.compile(rb"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[^,\n]*? \[(?P<pid>\d+)")
_SEVERITY = re.compile(
    rb" (?P<sev>LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?"
    rb"|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  ?"
)
_ATTACHED = frozenset({b"DETAIL", b"HINT", b"CONTEXT", b"STATEMENT", b"QUERY", b"LOCATION"})
_FAILURES = frozenset({b"ERROR", b"FATAL", b"PANIC"})
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def splittable(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an uncompressed stderr log (its first entry line tells)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(64 * 1024)
    except OSError:
        return False
    if head.startswith(_COMPRESSED_MAGIC):
        return False
    for line in head.split(b"\n")[:-1]:
        if line.strip():
            return _ENTRY.match(line) is not None
    return False


def entry_starts(path: str | os.PathLike[str], *, attached: bool = True) -> list[int]:
    """Byte offsets of the lines that start an entry (without DETAIL & co. if not
    ``attached``): every place a range may start. For tests and small files."""
    offsets = []
    position = 0
    with open(path, "rb") as stream:
        for line in stream:
            kind = _entry_kind(line)
            if kind is not None and (attached or kind[1] not in _ATTACHED):
                offsets.append(position)
            position += len(line)
    return offsets


def split_log(path: str | os.PathLike[str], parts: int) -> list[tuple[int, int]]:
    """About ``parts`` equal byte ranges ``[start, end)`` covering the file, cut cleanly."""
    size = os.path.getsize(path)
    if parts <= 1 or size == 0:
        return [(0, size)]
    cuts = [0]
    with open(path, "rb") as stream:
        for i in range(1, parts):
            planned = max(size * i // parts, cuts[-1] + 1)
            if planned >= size:
                break
            cut = _clean_cut(stream, planned, size)
            if cut is not None and cut > cuts[-1]:
                cuts.append(cut)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


def _entry_kind(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(pid, severity, message) of a line that starts an entry, else None."""
    entry = _ENTRY.match(line)
    if entry is None:
        return None
    severity = _SEVERITY.search(line, entry.end())
    if severity is None:
        return entry["pid"], b"", b""
    return entry["pid"], severity["sev"], line[severity.end() :]


def _clean_cut(stream: BinaryIO, planned: int, size: int) -> int | None:
    """The first clean entry start at or after ``planned`` (see the module docstring)."""
    begin = max(0, planned - LOOKBACK)
    stream.seek(begin)
    window = stream.read(min(size, planned + LOOKAHEAD) - begin)
    position = begin
    lines = window.split(b"\n")
    if begin > 0:  # the first piece is the tail of a line cut by the window
        position += len(lines[0]) + 1
        lines = lines[1:]
    backends = _Backends()
    best: tuple[int, int] | None = None  # (pairs open, position)
    for line in lines[:-1]:  # the last piece may be cut by the window
        kind = _entry_kind(line)
        if kind is not None:
            pid, severity, message = kind
            if position >= planned and severity not in _ATTACHED:
                busy = backends.busy()
                if not busy:
                    return position
                if best is None or busy < best[0]:
                    best = (busy, position)
            backends.follow(pid, severity, message)
        position += len(line) + 1
    return None if best is None else best[1]


_DURATION = re.compile(rb"duration: [0-9.]+ ms(?:  (?P<kind>plan|statement|execute|parse|bind))?")


class _Backends:
    """Which backends are inside a pair of entries a cut must not separate.

    A rough copy of the reader's per-backend rules (``explainer.capture.records``), as
    far as pairs go.
    """

    def __init__(self) -> None:
        self.statement: dict[bytes, bool] = {}  # log_statement; True for an execute
        self.execute: set[bytes] = set()  # executed: a plan may follow
        self.plan: set[bytes] = set()  # plan logged: its statement may follow
        self.plans_seen = False

    def busy(self) -> int:
        """How many pairs a cut here would separate."""
        held = len(self.execute) if self.plans_seen else 0
        return len(self.statement) + len(self.plan) + held

    def follow(self, pid: bytes, severity: bytes, message: bytes) -> None:
        if severity in _FAILURES:
            self._release(pid)
            self.statement.pop(pid, None)
        elif severity != b"LOG":
            return
        elif message.startswith(b"duration:"):
            match = _DURATION.match(message)
            self._duration(pid, match["kind"] if match is not None else b"?")
        elif message.startswith((b"disconnection:", b"connection received:")):
            self._release(pid)
            self.statement.pop(pid, None)
        elif message.startswith((b"statement:", b"execute ")):
            self._release(pid)
            self.statement[pid] = message.startswith(b"execute ")

    def _duration(self, pid: bytes, kind: bytes | None) -> None:
        if kind is None:  # log_duration: the statement logged earlier ended
            if self.statement.pop(pid, False):
                self._release(pid)
                self.execute.add(pid)
        elif kind == b"plan":
            self.plans_seen = True
            if pid in self.execute:
                self.execute.discard(pid)
            elif pid not in self.statement:
                self.plan.add(pid)
        elif kind in (b"execute", b"statement"):
            self._release(pid)
            self.statement.pop(pid, None)
            if kind == b"execute":
                self.execute.add(pid)
        elif kind == b"bind":
            self._release(pid)

    def _release(self, pid: bytes) -> None:
        self.execute.discard(pid)
        self.plan.discard(pid)


def read_range(path: str | os.PathLike[str], start: int, end: int) -> Iterator[str]:
    """The lines of ``path`` in bytes ``[start, end)``, decoded as the readers do.

    UTF-8 with bad bytes replaced, and only ``\\n`` ends a line (a stray ``\\r`` stays);
    lines are yielded without their ``\\n``.
    """
    with open(path, "rb") as stream:
        stream.seek(start)
        remaining = end - start
        pending = b""
        while remaining > 0:
            block = stream.read(min(CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            block = pending + block
            cut = len(block) if remaining <= 0 else block.rfind(b"\n") + 1
            pending = block[cut:]
            if cut:
                lines = block[:cut].decode("utf-8", "replace").split("\n")
                if lines[-1] == "":
                    lines.pop()
                yield from lines
        if pending:
            yield pending.decode("utf-8", "replace")
