"""Records of logs that reached a file through syslog or Heroku's logplex.

With ``log_destination = 'syslog'`` the server sends each line of a message as a
syslog message of its own, numbered ``[seq-part]``, and splits lines longer than about
900 bytes into further parts at a word boundary::

    Feb 11 13:15:40 host postgres[10819]: [7-1] db=postgres,user=postgres LOG:  duration: ...
    Feb 11 13:15:40 host postgres[10819]: [7-2] #011       pg_catalog.pg_get_userbyid(...

A part that starts with a TAB (``#011`` once the syslog daemon escaped it) continues the
message on a new line; a part that starts with the prefix and a severity is the message's
DETAIL, STATEMENT...; any other part is the rest of a split line and is joined as is.

Heroku Postgres logs come the same way through logplex (``app[postgres.PID]: [COLOR]
[seq-part]``), except that its parts never split a line. Each syslog message is sent on
its own, so parts of concurrent backends can interleave: a message is built per pid and
its records passed on together when that pid starts its next message (or has been quiet
for a while).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from explainer.capture.model import CaptureStats
from explainer.capture.prefix import BARE, LineParser, detect_parser, parser_for, with_fallback
from explainer.capture.records import LogRecord
from explainer.capture.stderr import ORPHAN_CONTINUATION, UNRECOGNISED

OTHER_PROGRAM = "log line of another program"

_SYSLOG = re.compile(
    r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    r"(?P<ident>[^\s\[]+)\[(?P<pid>\d+)\]: "
    r"(?:\[(?P<seq>\d+)(?:-(?P<part>\d+))?\] )?(?P<content>.*)"
)
_LOGPLEX = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\S+) (?:\S+ )?app\[postgres\.(?P<pid>\d+)\]:? "
    r"\[[A-Z0-9_]+\] \[(?P<seq>\d+)-(?P<part>\d+)\] (?P<content>.*)"
)
# Any other program's line in a logplex drain (app[web.1], heroku[router]...).
_LOGPLEX_OTHER = re.compile(r"\d{4}-\d\d-\d\dT\S+ (?:\S+ )?[\w.-]+\[[\w.-]+\]:? ")

# Records of a pid that has logged nothing for this many lines are complete: the parts
# of one message are sent within microseconds of each other.
_QUIET_LINES = 256


def sniff_syslog(head: Sequence[str]) -> bool:
    return any(_is_postgres_syslog(_SYSLOG.match(line)) for line in head)


def sniff_logplex(head: Sequence[str]) -> bool:
    return any(_LOGPLEX.match(line) for line in head)


def _is_postgres_syslog(match: re.Match[str] | None) -> bool:
    # The [seq-part] numbering is the server's; syslog_ident is "postgres" by default.
    return match is not None and (
        match.group("seq") is not None or "postgres" in match.group("ident").lower()
    )


def envelope_contents(head: Sequence[str], logplex: bool) -> list[str]:
    """The PostgreSQL lines inside the envelopes of ``head``, for prefix detection."""
    envelope = _LOGPLEX if logplex else _SYSLOG
    contents = []
    for line in head:
        match = envelope.match(line.rstrip("\n"))
        if match is not None:
            content = _decode(match.group("content"))
            if content and content[0] != "\t":
                contents.append(content.split("\n", 1)[0])
    return contents


def envelope_parser(head: Sequence[str], log_prefix: str | None, logplex: bool) -> LineParser:
    """The parser of the lines inside the envelopes (the server's ``log_line_prefix``)."""
    if log_prefix is not None:
        return with_fallback(parser_for(log_prefix), BARE)
    return detect_parser(envelope_contents(head, logplex), fallback=BARE)


@dataclass(slots=True)
class _Message:
    """The records of one message (one sequence number) of one backend, being read.

    A message's LOG and its DETAIL, STATEMENT... are passed on together, as the stderr
    reader would see them, whatever other backends logged between their parts.
    """

    seq: str | None
    records: list[LogRecord]
    parts: list[str]
    """What continues the last record."""
    first: int
    last: int

    def done(self) -> list[LogRecord]:
        if self.parts:
            self.records[-1].message += "".join(self.parts)
            self.parts = []
        return self.records


def syslog_records(
    lines: Iterable[str], parse: LineParser, stats: CaptureStats, logplex: bool = False
) -> Iterator[LogRecord]:
    """Records of a syslog file (or, with ``logplex``, of a Heroku log drain)."""
    envelope = _LOGPLEX if logplex else _SYSLOG
    building: dict[str, _Message] = {}
    number = 0
    for number, raw in enumerate(lines, 1):
        if number % _QUIET_LINES == 0 and building:
            yield from _quiet(building, number - _QUIET_LINES)
        line = raw.rstrip("\n").removesuffix("\r")
        if not line:
            continue
        match = envelope.match(line)
        if match is None or not (logplex or _is_postgres_syslog(match)):
            other = match is not None or (logplex and _LOGPLEX_OTHER.match(line) is not None)
            stats.skip(OTHER_PROGRAM if other else UNRECOGNISED)
            continue
        pid = match.group("pid")
        content = _decode(match.group("content"))
        more = ""
        if "\n" in content:  # syslog_split_messages off: one message, newlines escaped
            content, more = content.split("\n", 1)
            more = "".join(
                "\n" + (part[1:] if part[:1] == "\t" else part) for part in more.split("\n")
            )
        current = building.get(pid)
        if content[:1] == "\t":
            if current is None:
                stats.skip(ORPHAN_CONTINUATION)
            else:
                current.parts.append("\n" + content[1:] + more)
                current.last = number
            continue
        record = parse(content, number)
        if record is None:
            part = match.group("part")
            if current is not None and part is not None and part != "1":
                # The rest of a line the server split (syslog), or of a message Heroku
                # sent line by line.
                current.parts.append(("\n" if logplex else "") + content + more)
                current.last = number
            else:
                stats.skip(UNRECOGNISED)
            continue
        if not record.session:
            record.session = pid
        if record.timestamp is None:
            record.timestamp = match.group("ts")
        seq = match.group("seq")
        if current is not None and seq is not None and current.seq == seq:
            current.done().append(record)  # the message's DETAIL, STATEMENT...
            current.last = number
            if more:
                current.parts.append(more)
            continue
        if current is not None:
            yield from building.pop(pid).done()
        building[pid] = _Message(seq, [record], [more] if more else [], number, number)
    stats.lines_read = max(stats.lines_read, number)
    yield from _quiet(building, number + 1)


def _quiet(building: dict[str, _Message], before: int) -> Iterator[LogRecord]:
    """Pass on, oldest first, the messages whose pid logged nothing since ``before``."""
    quiet = sorted(
        (pid for pid, message in building.items() if message.last < before),
        key=lambda pid: building[pid].first,
    )
    for pid in quiet:
        yield from building.pop(pid).done()


def _decode(content: str) -> str:
    """Undo the syslog daemon's escapes of control characters (``#011`` is a TAB)."""
    if "#0" not in content:
        return content
    return content.replace("#011", "\t").replace("#012", "\n").replace("#015", "\r")
