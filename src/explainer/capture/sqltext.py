"""Split SQL text (a .sql file, pasted text, stdin) into statements.

Why a scanner of our own rather than ``pglast.split``, which uses PostgreSQL's scanner:
checked with pglast 8.8 (PostgreSQL 17 grammar),

- ``split(text)`` (parser mode) raises on the first syntax error or psql meta-command
  anywhere in the text, so one typo would lose the whole file;
- ``split(text, with_parser=False)`` (scanner mode) tolerates bad SQL but silently drops
  statements whose first token is not a keyword (``"selec 1; select 2"`` gives only
  ``select 2``, ``"foo; select 2"`` likewise), still raises on an unterminated quote,
  glues a ``\\timing`` line onto the statement after it and leading comment-only pieces
  onto the next statement.

Input here is whatever a user pasted, so losing statements silently or failing on one bad
one is the wrong trade. Splitting only needs the lexical rules that decide where a ``;``
is code, which are few and stable: quotes with ``''`` escapes, ``E''`` strings with
backslash escapes, ``"identifiers"``, ``$tag$`` dollar quotes, ``--`` and nested
``/* */`` comments. The scanner below implements those and never raises: an unterminated
construct runs to the end of the text and is kept as the last statement, for the parser
downstream to report.

psql input is handled the way psql reads it: a backslash outside quotes starts a
meta-command that runs to the end of the line; it is dropped (counted as skipped), and
``\\g`` and its variants end the current statement like ``;``. The data lines after
``COPY ... FROM stdin`` (pg_dump output) are skipped up to their ``\\.`` terminator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from explainer.capture.model import CapturedQuery, CaptureStats

# Everything that cannot start a quote, a comment, a meta-command or a statement end is
# taken in one step: most of any SQL text, and nearly all of a bulk INSERT.
_ORDINARY = re.compile(r"[^;'\"$\\/-]+")
_STRING_BODY = re.compile(r"[^']*(?:''[^']*)*")
_E_STRING_BODY = re.compile(r"[^'\\]*(?:(?:\\.|'')[^'\\]*)*", re.DOTALL)
_IDENTIFIER_BODY = re.compile(r'[^"]*(?:""[^"]*)*')
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_META_NAME = re.compile(r"\\([A-Za-z?!]*)")
_COMMENT_BOUNDARY = re.compile(r"/\*|\*/")
_COPY_FROM_STDIN = re.compile(r"copy\b.*\bfrom\s+stdin\b", re.IGNORECASE | re.DOTALL)

# psql meta-commands that send the query buffer, i.e. end a statement like ';'.
_EXECUTING_META = frozenset({"g", "gx", "gset", "gexec", "gdesc", "crosstabview", "watch"})

META_COMMAND = "psql meta-command"
COPY_DATA = "COPY data line"


def split_statements(text: str, source: str = "<input>") -> list[CapturedQuery]:
    """The statements of ``text``; see :func:`split_statements_with_stats`."""
    return split_statements_with_stats(text, source)[0]


def split_statements_with_stats(
    text: str, source: str = "<input>"
) -> tuple[list[CapturedQuery], CaptureStats]:
    """Split ``text`` into statements, keeping count of what was dropped and why.

    Each statement's ``sql`` runs from its first to its last token: leading and trailing
    whitespace and comments, and the ``;``, are not part of it (comments inside are), so
    the text can be wrapped (``EXPLAIN ...``) without a stray ``--`` swallowing the rest.
    Empty and comment-only pieces are dropped without counting: they are not statements.
    """
    splitter = _Splitter(text, source)
    splitter.run()
    stats = splitter.stats
    stats.lines_read = _count_lines(text)
    stats.queries = len(splitter.queries)
    return splitter.queries, stats


def _count_lines(text: str) -> int:
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


@dataclass
class _Splitter:
    text: str
    source: str
    queries: list[CapturedQuery] = field(default_factory=list)
    stats: CaptureStats = field(default_factory=CaptureStats)
    code_start: int | None = None
    code_end: int = 0
    # Incremental line counting: statements come in order, so each count starts where
    # the previous one stopped instead of rescanning from the top of the text.
    _line_pos: int = 0
    _line_no: int = 1

    def run(self) -> None:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            ordinary = _ORDINARY.match(text, i)
            if ordinary is not None:
                self.mark_run(i, ordinary.group())
                i = ordinary.end()
            elif text.startswith("--", i):
                i = _line_end(text, i)
            elif text.startswith("/*", i):
                i = _block_comment_end(text, i)
            elif text[i] == ";":
                i = self.end_statement(i + 1)
            elif text[i] == "\\":
                i = self.meta_command(i)
            else:
                end = _token_end(text, i)
                self.mark(i, end)
                i = end
        self.end_statement(n)

    def mark_run(self, start: int, run: str) -> None:
        """Mark the code of an ordinary run: all of it but surrounding whitespace."""
        code = run.strip()
        if code:
            lead = len(run) - len(run.lstrip())
            self.mark(start + lead, start + lead + len(code))

    def mark(self, start: int, end: int) -> None:
        if self.code_start is None:
            self.code_start = start
        self.code_end = end

    def end_statement(self, resume: int) -> int:
        """Emit the statement in progress; return where scanning resumes."""
        if self.code_start is None:
            return resume
        # rstrip: an unterminated quote runs to the end of the text, newline included.
        sql = self.text[self.code_start : self.code_end].rstrip()
        line = self.line_of(self.code_start)
        self.queries.append(CapturedQuery(sql=sql, source=self.source, line=line))
        self.code_start = None
        if _COPY_FROM_STDIN.match(sql):
            return self.skip_copy_data(resume)
        return resume

    def meta_command(self, i: int) -> int:
        match = _META_NAME.match(self.text, i)
        name = match.group(1) if match else ""
        end = _line_end(self.text, i)
        self.stats.skip(META_COMMAND)
        if name in _EXECUTING_META:
            return self.end_statement(end)
        return end

    def skip_copy_data(self, i: int) -> int:
        r"""Skip the data lines of ``COPY ... FROM stdin``, up to and including ``\.``."""
        text = self.text
        i = _line_end(text, i) + 1  # the data starts on the line after the statement
        while i < len(text):
            end = _line_end(text, i)
            line = text[i:end].rstrip("\r")
            if line == "\\.":
                return end
            self.stats.skip(COPY_DATA)
            i = end + 1
        return len(text)

    def line_of(self, pos: int) -> int:
        self._line_no += self.text.count("\n", self._line_pos, pos)
        self._line_pos = pos
        return self._line_no


def _line_end(text: str, i: int) -> int:
    """Index of the newline ending the line at ``i`` (or the end of the text)."""
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _block_comment_end(text: str, i: int) -> int:
    """End of the ``/* */`` comment at ``i``; PostgreSQL nests them, unlike the standard."""
    depth = 1
    pos = i + 2
    while depth:
        match = _COMMENT_BOUNDARY.search(text, pos)
        if match is None:
            return len(text)
        depth += 1 if match.group() == "/*" else -1
        pos = match.end()
    return pos


def _token_end(text: str, i: int) -> int:
    """End of the token at ``i``, one of ``' " $ - /``: a quoted construct or one character."""
    c = text[i]
    if c == "'":
        escapes = text[i - 1 : i] in ("e", "E") and not _is_identifier_char(text, i - 2)
        return _body_end(text, i + 1, _E_STRING_BODY if escapes else _STRING_BODY, "'")
    if c == '"':
        return _body_end(text, i + 1, _IDENTIFIER_BODY, '"')
    if c == "$" and not _is_identifier_char(text, i - 1):
        tag = _DOLLAR_TAG.match(text, i)
        if tag is not None:
            close = text.find(tag.group(), tag.end())
            return len(text) if close < 0 else close + len(tag.group())
    return i + 1  # $1, a $ inside a name (a$b), a lone - or /


def _is_identifier_char(text: str, i: int) -> bool:
    """Whether ``text[i]`` can continue a name: then a following ``'`` or ``$`` does too."""
    if i < 0:
        return False
    c = text[i]
    return c.isalnum() or c in "_$"


def _body_end(text: str, i: int, body: re.Pattern[str], quote: str) -> int:
    """End of a quoted construct whose body starts at ``i``; unterminated runs to the end."""
    end = body.match(text, i)
    stop = i if end is None else end.end()
    return stop + 1 if text.startswith(quote, stop) else len(text)
