"""``log_line_prefix`` -> a parser of stderr log lines.

A stderr log line is the server's ``log_line_prefix`` expanded, then ``SEVERITY:  ``
and the message. Any prefix is readable once it is known: :func:`compile_prefix` turns
the setting into one regular expression with named groups, so a line costs one match
(the stderr reader's :func:`compile_fast` variant of it also splits the commonest
messages in that match).
When the user does not say the prefix, :func:`detect_parser` tries the common ones on
the first lines and keeps the one that reads most of them; the tolerant header (a
timestamp, ``[pid]``, anything up to the severity) reads the rest, including lines
written under another prefix before a reload.

Escapes follow the PostgreSQL documentation (``%a %u %d %r %h %b %p %P %t %m %n %i %e %c
%l %s %v %x %q %Q %L %%``, with optional padding such as ``%-10u``). Values are matched
loosely (user and database as non-blank runs, the application and command tag as any
text up to what follows), which is what makes one regex per prefix enough.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from explainer.capture.records import SEVERITIES, TIMED_STEP, LogRecord, transaction_of

LineParser = Callable[[str, int], LogRecord | None]

# Every line of a log goes through these patterns, so they are written for sre's speed,
# never at the cost of what they match: an optional group is ``(?:X|)``, not ``(?:X)?``
# (the same thing, but an alternation costs sre much less than a repeated group).
_DATE_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
# %Z of the log timezone: an abbreviation (UTC, CEST) or a numeric offset (+03, -0530).
_ZONE = r"(?: (?:[A-Za-z][\w/+-]*|[+-]\d\d(?::?\d\d|))|)"

# escape -> (group name or None, regex of its value)
_ESCAPES: dict[str, tuple[str | None, str]] = {
    "a": ("application", r".*?"),
    "u": ("user", r"\S*?"),
    "d": ("database", r"\S*?"),
    "r": (None, r"\S*?"),
    "h": (None, r"\S*?"),
    "L": (None, r"\S*?"),
    "b": (None, r".*?"),
    "i": (None, r".*?"),
    "p": ("pid", r"\d+"),
    "P": (None, r"\d*"),
    "t": ("timestamp", _DATE_TIME + _ZONE),
    "m": ("timestamp", _DATE_TIME + r"\.\d+" + _ZONE),
    "n": ("timestamp", r"\d+(?:\.\d+|)"),
    "s": (None, _DATE_TIME + _ZONE),
    "e": (None, r"[0-9A-Z]{5}"),
    "c": ("session_id", r"[0-9a-f]+\.[0-9a-f]+"),
    "l": (None, r"\d+"),
    "v": ("vxid", r"(?:-?\d+/\d+|)"),
    "x": ("xid", r"\d*"),
    "Q": (None, r"-?\d+"),
}
_ESCAPE = re.compile(r"%(-?\d+)?(.)", re.DOTALL)
# Only a space or the first letter of a severity can come before `` *SEVERITY:``: the
# lookahead saves the lazy value before it (``%d``, ``%a``...) trying every severity
# after each of its characters.
_BEFORE_TAIL = "(?=[ {}])".format("".join(sorted({name[0] for name in SEVERITIES.split("|")})))
_MISSING = "missing"
_TAIL = rf"(?P<severity>{SEVERITIES}):(?: +|$)(?P<message>.*)"
# The message starts at the empty group ``body``: it is ``sql`` unless ``kind`` matched.
_FAST_TAIL = rf"(?P<severity>{SEVERITIES}):(?: +|$)(?P<body>)(?:{TIMED_STEP.pattern}|)(?P<sql>.*)"
_FIELDS = (
    "pid",
    "session_id",
    "timestamp",
    "user",
    "database",
    "application",
    "vxid",
    "xid",
    "severity",
    "message",
)

KNOWN_PREFIXES: tuple[str, ...] = (
    "%m [%p] %q%u@%d/%a ",  # Debian's default with the application appended
    "%m [%p] %q%u@%d ",  # Debian / Ubuntu default
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",  # pgbadger's recommendation
    "%t [%p]: [%l-1] user=%u,db=%d ",
    "%t [%p-%l] %q%u@%d ",
    "%t:%r:%u@%d:[%p]:",  # Amazon RDS / Aurora
    "%m [%p] ",  # PostgreSQL's own default since 13
    "%t [%p] ",
)
"""Tried in order; on a tie (a postmaster line fits several) the first wins, so more
specific prefixes come first."""

# The tolerant header of lines that fit no known prefix: a timestamp, the pid as
# ``[pid]``, ``[pid]:`` or ``[pid-line]``, an optional ``[line-1]``, then anything up to
# the severity; user, database and application are picked out of that "anything".
_TOLERANT = re.compile(
    r"(?P<timestamp>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?: [^\s\[]+)?)"
    r" \[(?P<pid>\d+)(?:-\d+)?\]:?"
    r"(?: \[\d+-\d+\])?"
    r" (?P<pre>.*?)"
    rf"(?<!\S){_TAIL}"
)
# The same without timestamp, for lines whose envelope (syslog, Cloud Logging, Heroku)
# carries the time and often the pid.
_BARE = re.compile(r"(?:\[(?P<pid>\d+)\]:? )?(?:\[\d+-\d+\] )?(?P<pre>.*?)" rf"(?<!\S){_TAIL}")
_KEY_VALUE = re.compile(
    r"(?<![\w.])(user|usr|db|database|dbname|app|appli|application|application_name)"
    r"=([^,\s]*)"
)
# (?<![^\s@]): a match starts where its run of characters does, so a long run without
# "@" is tried once, not from each of its characters (quadratic: 30 s for 100 kB).
_USER_AT_DB = re.compile(r"(?<![^\s@])([^\s@]*)@(\S*)")
_KEYS = {
    "user": "user",
    "usr": "user",
    "db": "database",
    "database": "database",
    "dbname": "database",
    "app": "application",
    "appli": "application",
    "application": "application",
    "application_name": "application",
}


def compile_prefix(prefix: str) -> re.Pattern[str]:
    """The regex of a whole log line written with ``log_line_prefix = prefix``.

    Trailing blanks of the prefix match any number of spaces (users often drop the
    trailing space when they quote their setting); ``%q`` makes the rest optional, as
    the server omits it for processes without a session.
    """
    return re.compile(_prefix_regex(prefix, _TAIL))


@lru_cache(maxsize=32)
def compile_fast(prefix: str) -> re.Pattern[str]:
    """:func:`compile_prefix` with the start of the common messages picked apart too.

    After the severity, the groups ``ms``, ``kind`` and ``sql`` split ``duration: X ms
    statement: SQL`` (or ``execute``, ``parse``, ``bind`` with their name) as
    ``records.py`` reads a whole message (:data:`~explainer.capture.records.TIMED_STEP`);
    in any other message nothing matches but ``sql``, which is then the whole message.
    It matches the same lines as :func:`compile_prefix`, with the same fields (the
    optional part comes after the severity, and the ``.*`` after it matches whether it
    does or not), so a reader need not match the message again. Without a group for the
    message (it starts where the empty group ``body`` does), nor for the fields the
    prefix lacks (they read the empty group ``missing``): fewer, shorter strings to make.
    """
    return re.compile(_prefix_regex(prefix, _FAST_TAIL, every_field=False))


def _prefix_regex(prefix: str, tail: str, every_field: bool = True) -> str:
    body = prefix.rstrip()
    parts: list[str] = []
    optional = False
    used: set[str] = set()
    pos = 0
    while pos < len(body):
        percent = body.find("%", pos)
        if percent < 0:
            parts.append(re.escape(body[pos:]))
            break
        if percent > pos:
            parts.append(re.escape(body[pos:percent]))
        escape = _ESCAPE.match(body, percent)
        if escape is None:  # a lone % at the very end
            parts.append("%")
            break
        padding, letter = escape.groups()
        pos = escape.end()
        if letter == "%":
            parts.append("%")
        elif letter == "q":
            if not optional:
                parts.append("(?:")
                optional = True
        elif letter in _ESCAPES:
            name, value = _ESCAPES[letter]
            if name is not None and name not in used:
                used.add(name)
                value = f"(?P<{name}>{value})"
            else:
                value = f"(?:{value})"
            parts.append(f" *{value} *" if padding else value)
        # any other escape expands to nothing, as in the server
    if optional:
        parts.append("|)")
    line = "".join(parts) + _BEFORE_TAIL + " *" + tail
    if not every_field:
        # The fields the prefix lacks read one empty group (see field_getter).
        return line + f"(?P<{_MISSING}>)"
    # Every pattern gets every field group (empty when the prefix lacks it), so a match is
    # read with one ``group()`` call whatever the prefix.
    return line + "".join(f"(?P<{name}>)" for name in _FIELDS[:-2] if name not in used)


FAST_FIELDS = (*_FIELDS[:-1], "ms", "kind", "sql")
"""The groups of a :func:`compile_fast` pattern, in the order :func:`field_getter` gives."""


def field_getter(pattern: re.Pattern[str], names: Sequence[str]) -> Callable[[Any], Any]:
    """A function of ``match.groups()`` that returns the groups ``names``, in that order
    (one ``groups()`` call costs less than naming them to ``group()``). A name the
    pattern lacks reads its empty ``missing`` group (:func:`compile_fast`)."""
    index = pattern.groupindex
    return itemgetter(*(index[name if name in index else _MISSING] - 1 for name in names))


class PrefixParser:
    """Reads the records of lines written with one known prefix.

    Values are taken as logged (an empty one is None); ``fallback`` reads the lines the
    prefix does not fit.
    """

    __slots__ = ("_fields", "_match", "fallback", "pattern", "prefix")

    def __init__(
        self, prefix: str, pattern: re.Pattern[str], fallback: LineParser | None = None
    ) -> None:
        self.prefix = prefix
        self.pattern = pattern
        self.fallback = fallback
        self._match = pattern.match
        self._fields = field_getter(pattern, _FIELDS)

    def fast_pattern(self) -> re.Pattern[str] | None:
        """The :func:`compile_fast` pattern of this prefix (None if ``pattern`` is not
        the prefix's own): it reads the same lines, and the common messages' start."""
        if self.pattern != compile_prefix(self.prefix):
            return None
        return compile_fast(self.prefix)

    def __call__(self, line: str, number: int) -> LogRecord | None:
        match = self._match(line)
        if match is None:
            return None if self.fallback is None else self.fallback(line, number)
        pid, session_id, timestamp, user, database, application, vxid, xid, severity, message = (
            self._fields(match.groups())
        )
        transaction = transaction_of(vxid, xid) if vxid or xid else None
        return LogRecord(
            number,
            pid or session_id,
            severity,
            message,
            timestamp or None,
            user or None,
            database or None,
            application or None,
            transaction,
        )


@dataclass(frozen=True, slots=True)
class TolerantParser:
    """Reads any ``timestamp [pid] ... SEVERITY:`` line (or, bare, any ``... SEVERITY:``)."""

    pattern: re.Pattern[str]

    def __call__(self, line: str, number: int) -> LogRecord | None:
        match = self.pattern.match(line)
        if match is None:
            return None
        fields = match.groupdict()
        user = database = application = None
        pre = fields["pre"]
        if pre:
            user, database, application = _pre_fields(pre)
        return LogRecord(
            line=number,
            session=fields["pid"] or "",
            severity=fields["severity"],
            message=fields["message"],
            timestamp=fields.get("timestamp"),
            user=user,
            database=database,
            application=application,
        )


TOLERANT = TolerantParser(_TOLERANT)
BARE = TolerantParser(_BARE)


def _pre_fields(pre: str) -> tuple[str | None, str | None, str | None]:
    """User, database and application from the part of a prefix the parser skipped."""
    found: dict[str, str | None] = {}
    for key, value in _KEY_VALUE.findall(pre):
        found.setdefault(_KEYS[key], _value(value))
    if "user" not in found and "database" not in found:
        at = _USER_AT_DB.search(pre)
        if at is not None:
            found["user"], found["database"] = _value(at.group(1)), _value(at.group(2))
    return found.get("user"), found.get("database"), found.get("application")


def _value(text: str | None) -> str | None:
    """Empty and ``[unknown]`` (before authentication) mean the value is not known."""
    if not text or text == "[unknown]":
        return None
    return text


def parser_for(prefix: str) -> PrefixParser:
    return PrefixParser(prefix, compile_prefix(prefix))


_KNOWN = tuple(parser_for(prefix) for prefix in KNOWN_PREFIXES)
DETECT_LINES = 200


def header_lines(lines: Iterable[str]) -> list[str]:
    """The lines of ``lines`` that could start a record (not continuations)."""
    found = []
    for raw in lines:
        line = raw.rstrip("\n").removesuffix("\r")
        if line and line[0] not in " \t":
            found.append(line)
    return found


def count_matches(parser: LineParser, lines: Sequence[str]) -> int:
    return sum(1 for line in lines if parser(line, 0) is not None)


def detect_parser(
    lines: Sequence[str],
    fallback: TolerantParser = TOLERANT,
    candidates: Sequence[PrefixParser] = _KNOWN,
) -> LineParser:
    """The parser that reads most of ``lines`` (record lines, see :func:`header_lines`).

    Lines it cannot read go to ``fallback``, so a file whose prefix changed midway still
    reads; when the fallback alone reads more lines than any known prefix, it is used
    directly.
    """
    sample = lines[:DETECT_LINES]
    best: PrefixParser | None = None
    best_count = 0
    for candidate in candidates:
        count = count_matches(candidate, sample)
        if count > best_count:
            best, best_count = candidate, count
    if best is None or count_matches(fallback, sample) > best_count:
        return fallback
    return with_fallback(best, fallback)


def with_fallback(primary: PrefixParser, fallback: LineParser) -> PrefixParser:
    """``primary``, reading with ``fallback`` the lines it does not fit."""
    return PrefixParser(primary.prefix, primary.pattern, fallback)
