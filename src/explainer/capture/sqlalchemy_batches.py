"""Rebuild the ``insertmanyvalues`` batch statements SQLAlchemy logs cut short.

SQLAlchemy logs a statement over 500 characters as its first 250 and last 100 around
``... N characters truncated ...``: the middle is lost. A batch's middle is its first
``VALUES (...)`` row repeated with the placeholders advanced, so it can be rebuilt and
checked against what the log kept. This is a self-contained guess-and-verify step, kept
out of the reader; whether the rebuilt placeholders match the logged values is the
caller's ``confirms`` check.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from explainer.capture.sqlalchemy_placeholders import _DOLLAR

# -- truncation markers ---------------------------------------------------------------

_STATEMENT_CUT = re.compile(r" \.\.\. (\d{1,9}) characters truncated \.\.\. ")
_CUT_LEFT, _CUT_RIGHT = 250, 100  # sqlalchemy.sql.util._long_statement
# A batch has at most 65535 parameters of a few dozen characters each: a logged length
# beyond this is not a statement to rebuild (and would cost memory to try).
_MAX_RESTORED = 4_000_000
_VALUES_ROW = re.compile(r"\bVALUES\s*\(", re.IGNORECASE)
_NAMED_ROW_PARAM = re.compile(r"(%\([^()]*?__)0(\)[sbt])")


def is_cut_statement(text: str) -> bool:
    """SQLAlchemy's ``_long_statement``: 250 characters, the marker, the last 100."""
    marker = _STATEMENT_CUT.match(text, _CUT_LEFT)
    return marker is not None and len(text) - marker.end() == _CUT_RIGHT


def restore_statement(text: str, confirms: Callable[[str], bool | None]) -> str | None:
    """Rebuild an ``insertmanyvalues`` batch statement SQLAlchemy logged cut; None if unsure.

    The batch is ``<head> VALUES <row 0>, <row 1>, ... <tail>``: each row is row 0 with
    its parameter names (``%(x__0)s`` -> ``%(x__1)s``) or numbers (``$1, $2`` -> ``$3,
    $4``) advanced and, in the ordered form, its trailing counter (``, 0)``) counted up.
    Rows are added until the text reaches the logged tail; the result must then have
    exactly the logged length and begin and end as logged. ``confirms`` checks its
    placeholders against the logged values; when it cannot tell (parameters hidden),
    the generated rows must also overlap the logged tail.
    """
    marker = _STATEMENT_CUT.match(text, _CUT_LEFT)
    if marker is None or len(text) - marker.end() != _CUT_RIGHT:
        return None
    left, right = text[:_CUT_LEFT], text[marker.end() :]
    total = _CUT_LEFT + int(marker[1]) + _CUT_RIGHT
    if total > _MAX_RESTORED:
        return None
    row_start = _VALUES_ROW.search(left)
    if row_start is None:
        return None
    start = row_start.end() - 1
    end = _closing_paren(left, start)
    if end is None:
        return None
    head, row0 = left[:start], left[start:end]
    boundary = total - _CUT_RIGHT
    for row in _row_variants(row0):
        known = [head]
        length = len(head)
        for index in itertools.count():
            piece = row(index) if index == 0 else ", " + row(index)
            known.append(piece)
            length += len(piece)
            if length < boundary:
                continue
            built = "".join(known)
            overlap = built[boundary:]
            if not built.startswith(left) or not right.startswith(overlap):
                break
            candidate = built[:boundary] + right
            verdict = confirms(candidate)
            if verdict or (verdict is None and overlap):
                return candidate
            break
    return None


def _closing_paren(text: str, start: int) -> int | None:
    """The index after the ``)`` closing the ``(`` at ``start``, quotes skipped."""
    depth = 0
    quoted = False
    for index in range(start, len(text)):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _row_variants(row0: str) -> list[Callable[[int], str]]:
    """How row ``i`` is made from row 0: with the ordered form's counter, and without."""
    if _NAMED_ROW_PARAM.search(row0):

        def base(index: int) -> str:
            return _NAMED_ROW_PARAM.sub(rf"\g<1>{index}\g<2>", row0)

    elif _DOLLAR.search(row0):
        width = len(_DOLLAR.findall(row0))

        def base(index: int) -> str:
            return _DOLLAR.sub(lambda m: f"${int(m[1]) + width * index}", row0)

    else:

        def base(index: int) -> str:
            return row0

    variants: list[Callable[[int], str]] = [base]
    if row0.endswith(", 0)"):

        def counted(index: int) -> str:
            return base(index)[: -len("0)")] + f"{index})"

        variants.insert(0, counted)
    return variants
