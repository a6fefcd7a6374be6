"""One entry point for a plan in whatever form a user pastes it: :func:`parse_plan`.

PostgreSQL prints plans in four formats (TEXT, JSON, YAML, XML) and users rarely paste
them bare. What arrives has gone through psql (a ``QUERY PLAN`` header and its dashes,
ASCII or unicode frames, ``+``/``↵`` marks at the end of every line of a multi-line cell,
an ``(N rows)`` footer, localized as ``(8 lignes)``, prompts, ``SET`` and ``Time:`` lines
around it), through pgAdmin or a CSV export (every line in double or single quotes, or the
whole JSON document as one CSV field with its quotes doubled), through a terminal that
hard-wrapped long lines, or through a server log (auto_explain's ``duration: .. ms plan:``
followed by tab-indented lines).

:func:`clean_plan_text` undoes all of that and gives the plan as PostgreSQL printed it;
:func:`detect_format` says which of the four formats it is; :func:`parse_plan` then builds
the JSON-shaped document (``text.py`` for TEXT, ``structured.py`` for YAML and XML, the
document itself for JSON) and hands it to :func:`~explainer.plan.parse.plan_from_document`,
so every format gets the same arithmetic.

Every cleaning step changes the text only when the whole plan shows the artefact: the
frame ``|`` is removed only when every line has it (a ``||`` operator inside a Filter
stays), quotes only when every line is wrapped (``'text'::text`` literals stay).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, NoReturn

from explainer.errors import PlanParseError
from explainer.plan.model import Plan
from explainer.plan.parse import _load_json_text, _unwrap_document, plan_from_document
from explainer.plan.structured import xml_to_document, yaml_to_document

_NOT_A_PLAN = "not an EXPLAIN plan"
_FORMATS_HINT = "paste the output of EXPLAIN (ANALYZE, BUFFERS), in any of its formats"


class PlanFormat(Enum):
    """The output formats of EXPLAIN (the FORMAT option)."""

    TEXT = "text"
    JSON = "json"
    YAML = "yaml"
    XML = "xml"


# --------------------------------------------------------------------------------------
# Public entry points


def parse_plan(source: str | bytes) -> Plan:
    """Read a plan in any EXPLAIN format, as pasted (see the module docstring).

    Raises :class:`PlanParseError` with one line saying what is wrong and what to do.
    """
    text = _decode(source)
    cleaned, plan_format = _prepare(text)
    document: Any
    if plan_format is PlanFormat.JSON:
        document = _load_json_text(cleaned)
    elif plan_format is PlanFormat.YAML:
        document = yaml_to_document(cleaned)
    elif plan_format is PlanFormat.XML:
        document = xml_to_document(cleaned)
    else:
        # Imported here so that JSON, YAML and XML keep working without the TEXT reader.
        from explainer.plan.text import text_to_document

        document = text_to_document(cleaned)
    return plan_from_document(_unwrap_document(document))


def clean_plan_text(text: str) -> str:
    """The plan inside ``text``, as PostgreSQL printed it: without psql's header, frames,
    continuation marks and footer, pgAdmin's quotes, session noise, a log line's prefix,
    or a terminal's hard wraps."""
    return _prepare(text)[0]


def detect_format(text: str) -> PlanFormat:
    """The EXPLAIN format of ``text`` (cleaned first, so a framed JSON plan is JSON).

    Raises :class:`PlanParseError` when it is no plan at all: empty, binary, SQL, prose.
    """
    return _prepare(text)[1]


# --------------------------------------------------------------------------------------
# Decoding and detection


def _decode(source: str | bytes) -> str:
    if isinstance(source, bytes | bytearray):
        try:
            return bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PlanParseError(
                f"{_NOT_A_PLAN}: the input is not UTF-8 text ({exc.reason} at byte "
                f"{exc.start}); save the plan as UTF-8 text and try again"
            ) from exc
    return source


def _prepare(text: str) -> tuple[str, PlanFormat]:
    text = text.lstrip("\ufeff")
    _refuse_binary(text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _auto_explain_body(lines)
    lines = _unquote(lines)
    lines = _drop_expanded_records(lines)
    lines = _after_header(lines)
    start = _plan_start(lines)
    if start is None:
        _refuse_non_plan(lines)
    lines = _before_footer(lines, start)
    lines = _strip_frames(lines)
    start = _plan_start(lines)
    if start is None:  # only a frame: nothing left
        _refuse_non_plan(lines)
    lines = lines[start:]
    plan_format = _format_of(lines)
    lines = _trim_tail(lines, plan_format)
    if plan_format is PlanFormat.TEXT:
        lines = _join_wrapped(lines)
    lines = _dedent(lines)
    return "\n".join(lines), plan_format


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _refuse_binary(text: str) -> None:
    sample = text[:4096]
    if "\x00" in sample or len(_CONTROL.findall(sample)) > max(2, len(sample) // 100):
        raise PlanParseError(f"{_NOT_A_PLAN}: the input is binary data, not text; {_FORMATS_HINT}")


_SQL_START = re.compile(
    r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE|MERGE|VALUES|TABLE|EXPLAIN|EXECUTE|CALL)\b",
    re.IGNORECASE,
)


def _refuse_non_plan(lines: list[str]) -> NoReturn:
    content = [
        line.strip()
        for line in lines
        if line.strip() and not _FOOTER.match(line) and not _SEPARATOR.match(line)
    ]
    if not content:
        raise PlanParseError(f"{_NOT_A_PLAN}: the input is empty; {_FORMATS_HINT}")
    if any(_SQL_START.match(line) for line in content[:20]):
        raise PlanParseError(
            f"{_NOT_A_PLAN}: the input looks like SQL; run it with "
            "`explainer analyze --query SQL` (or `--sql FILE`) to get its plan"
        )
    first = content[0]
    if len(first) > 40:
        first = first[:37] + "..."
    if first[0] in "[{":
        # Looks like JSON but no plan start was recognised: let the JSON reader say why.
        raise PlanParseError(
            f"{_NOT_A_PLAN}: the input starts with {first!r} but holds no plan object; "
            "paste the whole output of EXPLAIN (FORMAT JSON)"
        )
    raise PlanParseError(
        f"{_NOT_A_PLAN}: the input starts with {first!r} and holds no plan node "
        f"in the TEXT, JSON, YAML or XML format; {_FORMATS_HINT}"
    )


_JSON_START = re.compile(r"^\s*(\[\s*)?(\{\s*(\"|$)|$)")
_XML_START = re.compile(r"^\s*<(\?xml\b|explain\b|Query>|Plan>)")
_YAML_START = re.compile(r"^\s*(- )?(Plan|Query Text):(\s|$)")
_YAML_NODE = re.compile(r"^\s*(- )?Node Type: ")
_TEXT_NODE = re.compile(r"\((cost=\d|actual (time|rows)=|never executed\))")
_NODE_NAMES = (
    "Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|Bitmap Index Scan|BitmapAnd|"
    "BitmapOr|Nested Loop|Hash Join|Merge Join|Hash|Sort|Incremental Sort|Aggregate|"
    "HashAggregate|GroupAggregate|MixedAggregate|Group|Limit|Result|ProjectSet|Append|"
    "Merge Append|Recursive Union|Materialize|Memoize|Unique|SetOp|HashSetOp|LockRows|"
    "Gather|Gather Merge|WindowAgg|Window Aggregate|Subquery Scan|Function Scan|"
    "Table Function Scan|Values Scan|CTE Scan|Named Tuplestore Scan|WorkTable Scan|"
    "Foreign Scan|Custom Scan|Tid Scan|Tid Range Scan|Sample Scan|Insert on|Update on|"
    "Delete on|Merge on"
)
_TEXT_ROOT = re.compile(
    rf"^\s*(Parallel |Partial |Finalize |Async )?({_NODE_NAMES})(\s+on\s|\s+using\s|\s*$)"
)
_BORDER_LEFT = re.compile(r"^\s*[|│║┃]")
# (?<!\s) here, possessive \s*+ in _RECORD*: each run of spaces is tried once, not from
# each of its characters (quadratic: seconds for a line holding 20,000 spaces).
_MARK_RIGHT = re.compile(r"(?<!\s)\s*[+↵|│║┃]\s*$")


def _plan_start(lines: list[str]) -> int | None:
    """Index of the first line of the plan, in whichever format it is."""
    for index, raw in enumerate(lines):
        line = _MARK_RIGHT.sub("", _BORDER_LEFT.sub("", raw))
        if not line.strip():
            continue
        if (
            _JSON_START.match(line)
            or _XML_START.match(line)
            or _TEXT_NODE.search(line)
            or (_YAML_START.match(line) and _has_yaml_node(lines[index:]))
        ):
            return index
    # No costs, no ANALYZE (COSTS OFF): the root is only recognisable by its name.
    for index, raw in enumerate(lines):
        if _TEXT_ROOT.match(_BORDER_LEFT.sub("", raw)):
            return index
    return None


def _has_yaml_node(lines: list[str]) -> bool:
    return any(_YAML_NODE.match(_BORDER_LEFT.sub("", line)) for line in lines[:50])


def _format_of(lines: list[str]) -> PlanFormat:
    first = next((line for line in lines if line.strip()), "")
    if _JSON_START.match(first):
        return PlanFormat.JSON
    if _XML_START.match(first):
        return PlanFormat.XML
    if _YAML_START.match(first) and _has_yaml_node(lines):
        return PlanFormat.YAML
    return PlanFormat.TEXT


# --------------------------------------------------------------------------------------
# Cleaning steps, in the order _prepare runs them

_AUTO_EXPLAIN = re.compile(r"\bduration:\s*[\d.,]+\s*ms\s+plan:\s*(.*)$")
_LOG_ENTRY = re.compile(
    r"\b(LOG|ERROR|WARNING|NOTICE|INFO|DEBUG\d?|FATAL|PANIC|STATEMENT|DETAIL|HINT|CONTEXT):\s"
)


def _auto_explain_body(lines: list[str]) -> list[str]:
    """The plan of the first auto_explain entry (``LOG:  duration: 1.2 ms  plan:``), whose
    lines follow the log line, each indented by a tab in stderr logs."""
    for index, line in enumerate(lines):
        match = _AUTO_EXPLAIN.search(line)
        if match is None:
            continue
        body = [match.group(1)] if match.group(1).strip() else []
        rest = lines[index + 1 :]
        if rest and rest[0].startswith("\t"):
            for follow in rest:
                if not follow.startswith("\t"):
                    break
                body.append(follow[1:])
        else:
            for follow in rest:
                if _LOG_ENTRY.search(follow) and not follow.startswith((" ", "\t")):
                    break
                body.append(follow)
        return body
    return lines


def _unquote(lines: list[str]) -> list[str]:
    """Undo pgAdmin / CSV quoting: every line in "..." (CSV doubles inner quotes) or in
    '...', or the whole document as one "..." field, or a stray quote left at one end."""
    content = [line.strip() for line in lines if line.strip()]
    if not content:
        return lines
    for quote in "\"'":
        if all(len(line) >= 2 and line[0] == quote == line[-1] for line in content):
            result = []
            for line in lines:
                inner = line.strip()[1:-1] if line.strip() else ""
                result.append(inner.replace('""', '"') if quote == '"' else inner)
            return result
    first, last = content[0], content[-1]
    first_index = next(i for i, line in enumerate(lines) if line.strip())
    last_index = max(i for i, line in enumerate(lines) if line.strip())
    lines = list(lines)
    if first.startswith('"') and last.endswith('"') and (len(content) > 1 or len(first) > 1):
        # The whole document is one CSV field: strip its quotes and undouble the inner ones.
        if first_index == last_index:
            lines[first_index] = lines[first_index].strip()[1:-1]
        else:
            lines[first_index] = lines[first_index].strip()[1:]
            lines[last_index] = lines[last_index].rstrip()[:-1]
        return [line.replace('""', '"') for line in lines]
    # A quote left over at one end only (half of a copied field).
    if first.startswith('"') and first.count('"') % 2 == 1:
        lines[first_index] = lines[first_index].strip()[1:]
    if last.endswith('"') and last.count('"') % 2 == 1:
        lines[last_index] = lines[last_index].rstrip()[:-1]
    return lines


_RECORD = re.compile(r"^\s*+[|│║]?\s*[-─═]\[ RECORD \d+ \][-─═+┐┤╗╣|│║ ]*$")
_RECORD_FIELD = re.compile(r"^\s*+([|│║]\s)?(QUERY PLAN\s*|\s*)[|│║] ?")


def _drop_expanded_records(lines: list[str]) -> list[str]:
    """psql's expanded mode (``\\x``): ``-[ RECORD 1 ]---`` lines and a ``QUERY PLAN |``
    column in front of every line."""
    if not any(_RECORD.match(line) for line in lines):
        return lines
    first = next(i for i, line in enumerate(lines) if _RECORD.match(line))
    result = []
    for line in lines[first:]:
        if _RECORD.match(line):
            continue
        match = _RECORD_FIELD.match(line)
        if match is None:
            result.append(line)
            continue
        rest = line[match.end() :]
        result.append(re.sub(r"\s?[|│║]\s*$", "", rest) if match.group(1) else rest)
    return result


_HEADER = re.compile(r"^[\s|│║\"']*QUERY PLAN[\s|│║\"']*$")


def _after_header(lines: list[str]) -> list[str]:
    """Drop everything up to and including psql's ``QUERY PLAN`` column header."""
    for index, line in enumerate(lines):
        if _HEADER.match(line):
            return lines[index + 1 :]
    return lines


_FOOTER = re.compile(r"^\s*\(\d+ [^\W\d_]+\)\s*$")


def _before_footer(lines: list[str], start: int) -> list[str]:
    """Drop psql's ``(N rows)`` footer (in any language) and whatever follows it."""
    for index in range(start + 1, len(lines)):
        if _FOOTER.match(lines[index]):
            return lines[:index]
    return lines


_SEPARATOR = re.compile(r"^[\s\-+=─━═│║┃┌┐└┘├┤┬┴┼╔╗╚╝╠╣╦╩╬╒╓╕╖╘╙╛╜╞╟╡╢╤╥╧╨╪╫╭╮╯╰┏┓┗┛┣┫┳┻╋]*$")
_SEPARATOR_RUN = re.compile(r"[-─━═]{3}")
_BORDER_RIGHT = re.compile(r"\s?[|│║┃]\s*$")
_CONTINUATION = re.compile(r"(?<!\s)\s*[+↵]$")


def _strip_frames(lines: list[str]) -> list[str]:
    """Drop psql's separator lines, its outer borders (only when every line has them) and
    the ``+``/``↵`` marks ending every line but the last of a multi-line cell."""
    lines = [line for line in lines if not (_SEPARATOR.match(line) and _SEPARATOR_RUN.search(line))]
    content = [line for line in lines if line.strip()]
    if content and all(_BORDER_LEFT.match(line) for line in content):
        lines = [re.sub(r"^\s*[|│║┃] ?", "", line) for line in lines]
        content = [line for line in lines if line.strip()]
    if content and all(_BORDER_RIGHT.search(line) for line in content):
        lines = [_BORDER_RIGHT.sub("", line) for line in lines]
    lines = [line.rstrip() for line in lines]
    content = [line for line in lines if line]
    if len(content) >= 2 and all(_CONTINUATION.search(line) for line in content[:-1]):
        lines = [_CONTINUATION.sub("", line) for line in lines]
    return lines


_PROMPT = re.compile(r"^\S*[=\-(~'\"*][#>](\s|$)")
_TIMING = re.compile(r"^\s*[^\W\d_]+\s*:\s*[\d.,]+\s*ms\b")
_COMMAND_TAG = re.compile(
    r"^\s*(SET|RESET|BEGIN|COMMIT|ROLLBACK|ANALYZE|VACUUM|LOAD|CHECKPOINT|DO|"
    r"(CREATE|DROP|ALTER) [A-Z ]+|SELECT \d+|INSERT \d+ \d+|(UPDATE|DELETE|MERGE|COPY) \d+)\s*$"
)


def _trim_tail(lines: list[str], plan_format: PlanFormat) -> list[str]:
    """Drop what follows the plan: psql timing lines, prompts, command tags, blank lines,
    and for JSON and XML anything after the closing bracket or tag."""
    end = len(lines)
    if plan_format is PlanFormat.JSON:
        closing = [i for i, line in enumerate(lines) if line.rstrip().endswith(("]", "}"))]
        if closing:
            end = closing[-1] + 1
    elif plan_format is PlanFormat.XML:
        closing = [i for i, line in enumerate(lines) if line.rstrip().endswith(">")]
        if closing:
            end = closing[-1] + 1
    while end > 0 and (
        not lines[end - 1].strip()
        or _PROMPT.match(lines[end - 1])
        or _TIMING.match(lines[end - 1])
        or _COMMAND_TAG.match(lines[end - 1])
    ):
        end -= 1
    return lines[:end]


_PLAN_LINE = re.compile(r"^\s*(->\s|[A-Z]|\[|\{|$)")


def _join_wrapped(lines: list[str]) -> list[str]:
    """Rejoin TEXT lines a terminal hard-wrapped at a fixed width.

    A wrapped line is as long as the widest line (or one less, when the copy dropped the
    space it broke at) and is followed by a line that no plan line starts like: not a
    node (``->``), not a property (``Filter:``, capitalised), but ``ual time=..``,
    ``2..9958.864 rows=..`` or ``  (cost=..``.
    """
    width = max((len(line) for line in lines), default=0)
    if width < 40 or sum(1 for line in lines if len(line) >= width - 1) < 2:
        return lines
    result: list[str] = []
    piece = 0  # length of the last line as wrapped (result[-1] may be several joined)
    for line in lines:
        if result and piece >= width - 1 and not _PLAN_LINE.match(line):
            result[-1] += ("" if piece == width else " ") + line
        else:
            result.append(line)
        piece = len(line)
    return result


def _dedent(lines: list[str]) -> list[str]:
    """Remove the indentation every line shares (psql's one-space cell padding)."""
    content = [line for line in lines if line.strip()]
    if not content:
        return lines
    indent = min(len(line) - len(line.lstrip(" ")) for line in content)
    return [line[indent:] for line in lines]
