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
from typing import Any, Final

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


# -- the prefix program ---------------------------------------------------------------------
#
# The fast regex costs ~10,000 machine instructions a line (its lazy ``\S*?`` values try
# the rest of the pattern after each character), a third of a query's whole cost once the
# reader is compiled. For the usual prefixes a handful of str operations (find, slices,
# character codes) read the same fields in a tenth of that when mypyc compiles them. They
# are not a second parser to keep in step with the regex: the program only ever answers
# when its answer is provably the regex's, and otherwise says "unsure" and the regex
# reads the line. The proof is the regex engine's own order: at each choice the program
# takes the option the engine tries first among those that can get past the very next
# element (the longest run of a greedy ``\d+``; the first occurrence of the literal after
# a lazy value), so when the program gets to the end of the line, the engine gets there
# the same way. Whenever that reasoning would need more (a ``:`` inside a lazy value that
# a severity could end at, a character that may be Unicode whitespace or a Unicode digit,
# an alternative that fails after its first element), the program gives up on the line.

# Final: mypyc makes these C constants (a plain module global is a dict lookup each use).
_LITERAL: Final = 0
_STAMP: Final = 1
_STAMP_MS: Final = 2
_DIGITS: Final = 3
_WORD: Final = 4
_NO_FIELD: Final = 0
_PID: Final = 1
_TIMESTAMP: Final = 2
_USER: Final = 3
_DATABASE: Final = 4
_PROGRAM_FIELDS = {"p": _PID, "m": _TIMESTAMP, "t": _TIMESTAMP, "u": _USER, "d": _DATABASE}
_PROGRAM_OPS = {"m": _STAMP_MS, "t": _STAMP, "p": _DIGITS, "l": _DIGITS}
_PROGRAM_WORDS = frozenset("udrhL")  # the \S*? values
_TAIL_STARTS: Final = " " + "".join(sorted({name[0] for name in SEVERITIES.split("|")}))
_SEVERITY_WORDS: Final = frozenset(
    [*(name for name in SEVERITIES.split("|") if "[" not in name), "DEBUG"]
    + [f"DEBUG{level}" for level in "12345"]
)
_OK: Final = 0
_FAILED: Final = 1
_UNSURE: Final = 2
_ZERO: Final = 48  # ord("0")
_NINE: Final = 57  # ord("9")


class PrefixProgram:
    """A ``log_line_prefix`` compiled to str operations; see the comment above.

    :meth:`read` fills the fields of :class:`FastEntry` exactly as a match of
    :func:`compile_fast` would, or returns False when it is not sure it can.
    """

    def __init__(self, ops: list[int], texts: list[str], fields: list[int], optional: int) -> None:
        self.ops = ops
        """What each step reads (``_LITERAL``, ``_STAMP``...)."""
        self.texts = texts
        """The text of each ``_LITERAL`` step ("" for the others)."""
        self.fields = fields
        """The field each step fills (``_NO_FIELD`` for literals and unnamed values)."""
        self.optional = optional
        """The first step after ``%q`` (every step from there on is optional), or -1."""


def compile_program(prefix: str) -> PrefixProgram | None:
    """The program of ``prefix``, or None when it holds what the program cannot read
    (padding, escapes other than ``%m %t %p %l %u %d %r %h %L %q %%``, a lazy value not
    followed by literal text or the severity): such a prefix is read by the regex."""
    body = prefix.rstrip()
    ops: list[int] = []
    texts: list[str] = []
    fields: list[int] = []
    used: set[int] = set()

    def emit(op: int, text: str, field: int) -> None:
        ops.append(op)
        texts.append(text)
        fields.append(field)

    optional = -1
    pos = 0
    literal = ""
    while pos < len(body):
        percent = body.find("%", pos)
        if percent < 0:
            literal += body[pos:]
            break
        literal += body[pos:percent]
        escape = _ESCAPE.match(body, percent)
        if escape is None:  # a lone % at the very end
            literal += "%"
            break
        padding, letter = escape.groups()
        pos = escape.end()
        if letter == "%":
            literal += "%"
            continue
        if padding is not None:
            return None
        if letter == "q":
            if optional < 0:
                if literal:
                    emit(_LITERAL, literal, _NO_FIELD)
                    literal = ""
                optional = len(ops)
            continue
        if letter not in _PROGRAM_OPS and letter not in _PROGRAM_WORDS:
            if letter in _ESCAPES:
                return None
            continue  # any other escape expands to nothing, as in the server
        if literal:
            emit(_LITERAL, literal, _NO_FIELD)
            literal = ""
        field = _PROGRAM_FIELDS.get(letter, _NO_FIELD)
        if field in used:
            field = _NO_FIELD  # the regex names only a field's first escape
        used.add(field)
        emit(_WORD if letter in _PROGRAM_WORDS else _PROGRAM_OPS[letter], "", field)
    if literal:
        emit(_LITERAL, literal, _NO_FIELD)
    for index, op in enumerate(ops):
        # A lazy value must be followed by literal text (its end is where that text first
        # occurs) or come last (its end is the first blank): else the regex's choice
        # depends on what comes after, which the program does not follow.
        if op == _WORD and index + 1 < len(ops) and ops[index + 1] != _LITERAL:
            return None
    if optional == len(ops):
        optional = -1  # %q at the end: an empty optional part
    return PrefixProgram(ops, texts, fields, optional)


def _digits_end(line: str, pos: int, end: int) -> int:
    """Where the run of ASCII digits from ``pos`` ends; -1 if a character after it may be
    a Unicode digit (``\\d`` matches those too: the program is then unsure)."""
    while pos < end:
        code = ord(line[pos])
        if code > 127:
            return -1
        if code < _ZERO or code > _NINE:
            return pos
        pos += 1
    return pos


def _is_digits(line: str, start: int, end: int) -> bool:
    """Whether ``line[start:end]`` is all ASCII digits (the caller checked the length)."""
    while start < end:
        code = ord(line[start])
        if code < _ZERO or code > _NINE:
            return False
        start += 1
    return True


def _blanks(line: str, start: int, end: int) -> int:
    """``_OK`` when ``line[start:end]`` surely has no whitespace, ``_FAILED`` when it surely
    has, ``_UNSURE`` otherwise (every whitespace but the space is unprintable, not the
    reverse). Printable ASCII, the usual case, is read by code point without a slice."""
    pos = start
    while pos < end:
        code = ord(line[pos])
        if code == 32:
            return _FAILED
        if code < 33 or code > 126:
            value = line[start:end]
            if " " in value:
                return _FAILED
            return _OK if value.isprintable() else _UNSURE
        pos += 1
    return _OK


COMPILED: Final = not __file__.endswith(".py")
"""Whether this module runs compiled (mypyc, setup.py). The prefix program is a string
walk: compiled, it costs a fraction of the regex match; interpreted, several times more
(the 1 GB benchmark log read at 5.9 MB/s instead of ~27 with it), so pure Python keeps the
regex."""


class FastEntry:
    """The fields of the last line read, as the groups of a :func:`compile_fast` match.

    One instance is reused for every line (the stderr reader settles an entry before it
    reads the next), so a line costs no match object and no tuple of groups. Lines the
    prefix's :class:`PrefixProgram` cannot vouch for are matched with the regex and its
    groups copied here: the fields are the same whichever read the line.
    """

    def __init__(self, prefix: str, use_program: bool = COMPILED) -> None:
        pattern = compile_fast(prefix)
        self.program = compile_program(prefix) if use_program else None
        self._match = pattern.match
        self._fields = field_getter(pattern, FAST_FIELDS)
        self._body = pattern.groupindex["body"]
        self.line = ""
        self.pid: str | None = None
        self.session_id: str | None = None
        self.timestamp: str | None = None
        self.user: str | None = None
        self.database: str | None = None
        self.application: str | None = None
        self.vxid: str | None = None
        self.xid: str | None = None
        self.severity = ""
        self.ms: str | None = None
        self.kind: str | None = None
        self.sql = ""
        self.body = 0
        """Where the message starts in ``line``."""
        self._second = "-" * 20
        """The date and time (19 characters) of the last timestamp the program read; 20
        characters until then, which no 19 characters can hold."""
        # Fields the prefix lacks read "" (the fast pattern's empty ``missing`` group).
        names = pattern.groupindex
        self._absent = [
            "" if name not in names else None for name in ("pid", "timestamp", "user", "database")
        ]

    def read(self, line: str) -> bool:
        """Read ``line``; False when the prefix does not fit it."""
        program = self.program
        if program is not None and self._run(program, line):
            return True
        match = self._match(line)
        if match is None:
            return False
        (self.pid, self.session_id, self.timestamp, self.user, self.database,
         self.application, self.vxid, self.xid, self.severity, self.ms, self.kind,
         self.sql) = self._fields(match.groups())  # fmt: skip
        self.line = line
        self.body = match.start(self._body)
        return True

    def message(self) -> str:
        """The whole message of the line (``sql`` unless a timed step was split off)."""
        return self.sql if self.kind is None else self.line[self.body :]

    def _run(self, program: PrefixProgram, line: str) -> bool:
        """Read ``line`` with ``program``; False when unsure (nothing is then kept)."""
        if line.find("\n") >= 0:
            return False  # the regex's ``.*`` stops there
        end = len(line)
        ops, texts, fields = program.ops, program.texts, program.fields
        optional = program.optional
        absent = self._absent
        # Locals, not a list of values: compiled, a list costs an allocation and boxed
        # reads and writes on every line.
        pid, timestamp, user, database = absent[0], absent[1], absent[2], absent[3]
        pos = 0
        index = 0
        count = len(ops)
        while index < count:
            op = ops[index]
            start = pos
            state = _OK
            if op == _LITERAL:
                text = texts[index]
                if line.find(text, pos, pos + len(text)) != pos:
                    state = _FAILED
                pos += len(text)
            elif op == _DIGITS:
                pos = _digits_end(line, pos, end)
                if pos < 0:
                    return False
                if pos == start:
                    state = _FAILED
            elif op == _WORD:
                if index + 1 < count:  # a literal follows: the value ends where it starts
                    pos = line.find(texts[index + 1], pos)
                    state = _FAILED if pos < 0 else _blanks(line, start, pos)
                else:  # the severity follows: the value is the run up to a blank
                    # A severity and its colon could end the lazy value early: the value
                    # must hold no colon and be printable. Printable ASCII, the usual
                    # case, is read by code point.
                    while pos < end:
                        code = ord(line[pos])
                        if code == 32 or code == 58 or code < 33 or code > 126:
                            break
                        pos += 1
                    if pos >= end or ord(line[pos]) == 58:
                        return False
                    if ord(line[pos]) != 32:
                        pos = line.find(" ", pos)
                        if pos < 0:
                            return False
                        value = line[start:pos]
                        if ":" in value or not value.isprintable():
                            return False
            elif line.find(self._second, pos, pos + 19) == pos:
                # The date and time of the last timestamp read (a busy log writes many
                # entries a second): only the fraction and the zone are left to read.
                pos = _stamp_tail(line, pos + 19, end, op == _STAMP_MS)
                if pos < 0:
                    return False
            else:
                pos = _stamp_end(line, pos, end, op == _STAMP_MS)
                if pos < 0:
                    return False
                self._second = line[start : start + 19]
            if state != _OK:
                # The optional part's first step failing for good means the regex takes
                # its empty alternative; any other failure is for the regex to judge.
                if state == _FAILED and index == optional:
                    pos = start
                    for field in fields[index:]:
                        if field == _PID:
                            pid = None
                        elif field == _TIMESTAMP:
                            timestamp = None
                        elif field == _USER:
                            user = None
                        elif field == _DATABASE:
                            database = None
                    break
                return False
            field = fields[index]
            if field != _NO_FIELD:
                if field == _PID:
                    pid = line[start:pos]
                elif field == _TIMESTAMP:
                    timestamp = line[start:pos]
                elif field == _USER:
                    user = line[start:pos]
                else:
                    database = line[start:pos]
            index += 1
        if not self._tail(line, pos, end):
            return False
        self.line = line
        self.pid, self.timestamp = pid, timestamp
        self.user, self.database = user, database
        self.session_id = self.application = self.vxid = self.xid = ""
        return True

    def _tail(self, line: str, pos: int, end: int) -> bool:
        """Read the severity and the start of the message from ``pos``, as ``_FAST_TAIL``."""
        if pos >= end or line[pos] not in _TAIL_STARTS:
            return False
        while pos < end and ord(line[pos]) == 32:
            pos += 1
        if (  # "LOG:", most entries: no slice, no set lookup
            pos + 3 < end
            and ord(line[pos]) == 76
            and ord(line[pos + 1]) == 79
            and ord(line[pos + 2]) == 71
            and ord(line[pos + 3]) == 58
        ):
            severity = "LOG"
            pos += 4
        else:
            colon = line.find(":", pos, pos + 10)
            if colon < 0:
                return False
            severity = line[pos:colon]
            if severity not in _SEVERITY_WORDS:
                return False
            pos = colon + 1
        if pos < end:
            if ord(line[pos]) != 32:
                return False
            while pos < end and ord(line[pos]) == 32:
                pos += 1
        self.severity = severity
        self.body = pos
        self.ms = self.kind = None
        sql = _timed_step(self, line, pos, end)
        if sql < 0:
            if sql == -2:
                return False
            sql = pos
        self.sql = line[sql:]
        return True


def _timed_step(entry: FastEntry, line: str, pos: int, end: int) -> int:
    """Read ``duration: X ms  kind [name]: `` (``TIMED_STEP``) at ``pos`` into ``entry``;
    where the statement starts, -1 if the message is not one, -2 if unsure."""
    if line.find("duration: ", pos, pos + 10) != pos:
        return -1
    start = pos + 10
    pos = _digits_end(line, start, end)
    if pos < 0:
        return -2
    if pos == start:
        return -1
    if pos + 1 < end and line[pos] == ".":
        fraction = _digits_end(line, pos + 1, end)
        if fraction < 0:
            return -2
        if fraction > pos + 1:
            pos = fraction
    ms = line[start:pos]
    if (
        pos + 4 > end
        or ord(line[pos]) != 32
        or ord(line[pos + 1]) != 109
        or ord(line[pos + 2]) != 115
        or ord(line[pos + 3]) != 32
    ):
        return -1  # not " ms "
    pos += 4
    while pos < end and ord(line[pos]) == 32:
        pos += 1
    if pos >= end:
        return -1
    # The kind by its first letter (they differ), then checked whole.
    code = ord(line[pos])
    if code == 115:
        kind = "statement"
    elif code == 101:
        kind = "execute"
    elif code == 112:
        kind = "parse"
    elif code == 98:
        kind = "bind"
    else:
        return -1
    if line.find(kind, pos, pos + len(kind)) != pos:
        return -1
    pos += len(kind)
    fetch = (
        pos + 1 < end
        and ord(line[pos]) == 32
        and ord(line[pos + 1]) == 102
        and line.find(" fetch from", pos, pos + 11) == pos
    )
    if fetch:
        pos += 11
    # (?: \S*|): — a name is a run of non-blanks ending with the colon.
    sql = -1
    if pos < end and ord(line[pos]) == 32:
        blank = line.find(" ", pos + 1)
        if blank > pos + 1:
            # The name must be printable: printable ASCII is read by code point.
            at = pos + 1
            while at < blank:
                code = ord(line[at])
                if code < 33 or code > 126:
                    if not line[pos + 1 : blank].isprintable():
                        return -2
                    break
                at += 1
            if ord(line[blank - 1]) == 58:  # ":"
                sql = blank + 1
    elif line.find(": ", pos, pos + 2) == pos:
        sql = pos + 2
    if sql < 0:
        # Without " fetch from" the name part could read more ways than the program follows.
        return -2 if fetch else -1
    entry.ms, entry.kind = ms, kind
    return sql


def _stamp_end(line: str, pos: int, end: int, fraction: bool) -> int:
    """Where a ``%t`` (``fraction``: ``%m``) timestamp from ``pos`` ends, zone included;
    -1 when the program cannot be sure."""
    stop = pos + 19
    if (
        stop > end
        or line[pos + 4] != "-"
        or line[pos + 7] != "-"
        or line[pos + 10] != " "
        or line[pos + 13] != ":"
        or line[pos + 16] != ":"
        or not _is_digits(line, pos, pos + 4)
        or not _is_digits(line, pos + 5, pos + 7)
        or not _is_digits(line, pos + 8, pos + 10)
        or not _is_digits(line, pos + 11, pos + 13)
        or not _is_digits(line, pos + 14, pos + 16)
        or not _is_digits(line, pos + 17, stop)
    ):
        return -1
    return _stamp_tail(line, stop, end, fraction)


def _stamp_tail(line: str, pos: int, end: int, fraction: bool) -> int:
    """Where a timestamp whose date and time end at ``pos`` ends: its fraction (``%m``)
    and zone; -1 when the program cannot be sure."""
    stop = pos
    if fraction:
        if pos >= end or line[pos] != ".":
            return -1
        pos = _digits_end(line, pos + 1, end)
        if pos <= stop + 1:
            return -1
    # The zone, (?: (?:[A-Za-z][\w/+-]*|[+-]\d\d(?::?\d\d|))|): an abbreviation, an
    # offset, or nothing.
    if pos + 1 >= end or line[pos] != " ":
        return pos
    code = ord(line[pos + 1])
    if 65 <= code <= 90 or 97 <= code <= 122:
        pos += 2
        while pos < end:
            code = ord(line[pos])
            if code > 127:
                return -1  # \w takes Unicode letters
            if not (
                _ZERO <= code <= _NINE
                or 65 <= code <= 90
                or 97 <= code <= 122
                or code in (43, 45, 47, 95)  # + - / _
            ):
                break
            pos += 1
        return pos
    if code == 43 or code == 45:  # + or -
        return -1  # numeric offsets: left to the regex
    return pos
