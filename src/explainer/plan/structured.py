"""EXPLAIN (FORMAT YAML) and (FORMAT XML) output, turned into the JSON-shaped document.

PostgreSQL prints the same tree in its four formats from one code path (explain.c), so the
YAML and XML readers only have to undo each format's spelling and hand the result to
:func:`~explainer.plan.parse.plan_from_document`:

- YAML keys are the JSON keys; numbers are unquoted and strings double-quoted, so
  ``yaml.safe_load`` gives the JSON values back. Aliases are refused (PostgreSQL never
  writes them, and expanding them is how a small YAML text becomes a huge tree).
- XML element names are the JSON keys with every character other than ``[A-Za-z0-9-_.]``
  replaced by ``-`` (``ExplainXMLTag``): ``Node-Type`` is "Node Type", ``I-O-Read-Time``
  is "I/O Read Time". Lists are written as a group element holding one element per
  entry (``<Plans><Plan>..</Plan></Plans>``, ``<Workers><Worker>``, ``<Triggers>
  <Trigger>``) or, for lists of strings, ``<Item>`` children (``<Sort-Key><Item>``).
  Every value is text, so numbers and booleans are converted back here. Groups are
  named by their object type in XML, not by their JSON label: the two groups of an
  Incremental Sort are both ``<Incremental-Sort-Groups>``, first "Full-sort Groups" then
  "Pre-sorted Groups" in JSON, and their ``<Sort-Space>`` is "Sort Space Memory" then
  "Sort Space Disk".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, time
from typing import Any

import yaml

from explainer.errors import PlanParseError

_NOT_A_PLAN = "not a PostgreSQL plan"

#: Groups whose JSON value is a list of objects (one child element per entry).
_LIST_GROUPS = frozenset(
    {"Plans", "Workers", "Triggers", "Grouping Sets", "Group Keys", "Target Tables"}
)
#: Groups whose JSON value is an object even when PostgreSQL printed it empty.
_OBJECT_GROUPS = frozenset({"Settings", "JIT", "Options", "Timing", "Planning", "Serialization"})

# --------------------------------------------------------------------------------------
# YAML


class _PlanLoader(yaml.SafeLoader):
    """SafeLoader without aliases: EXPLAIN never writes them, and each one expanded while
    walking the tree would let a few lines stand for billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise PlanParseError(
                f"{_NOT_A_PLAN}: the YAML uses aliases ('*name'), which EXPLAIN never "
                "prints; paste the output of EXPLAIN (FORMAT YAML) as it is"
            )
        return super().compose_node(parent, index)


def yaml_to_document(text: str) -> Any:
    """The value EXPLAIN (FORMAT YAML) printed (a list holding the object with "Plan"),
    with every value made JSON-like (strings, numbers, booleans, lists, dicts, None)."""
    try:
        value = yaml.load(text, Loader=_PlanLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = exc.problem or "syntax error"
        raise PlanParseError(f"{_NOT_A_PLAN}: invalid YAML{where}: {problem}") from exc
    except yaml.YAMLError as exc:
        # A ReaderError (a control character) says where on a second line: keep one.
        reason = " ".join(str(exc).split())
        raise PlanParseError(f"{_NOT_A_PLAN}: invalid YAML ({reason})") from exc
    except RecursionError as exc:
        raise PlanParseError(f"{_NOT_A_PLAN}: YAML nested too deeply") from exc
    except ValueError as exc:  # the int constructor refuses 4300+ digits
        raise PlanParseError(f"{_NOT_A_PLAN}: the YAML holds a number too long to read") from exc
    return _json_like(value)


def _json_like(value: Any) -> Any:
    """YAML 1.1 can produce dates, times and bytes, and non-string keys; JSON cannot. An
    empty group (``Triggers:``) is null in YAML but ``[]`` or ``{}`` in JSON.
    Iterative, so a deep plan cannot exhaust the stack here either."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        container, slot, item = stack.pop()
        if isinstance(item, dict):
            converted: dict[str, Any] = {}
            for key, child in item.items():
                name = key if isinstance(key, str) else _scalar_text(key)
                if child is None and name in _LIST_GROUPS:
                    child = []  # "Triggers:" with nothing after it is an empty list
                elif child is None and name in _OBJECT_GROUPS:
                    child = {}
                converted[name] = child
                stack.append((converted, name, child))
            container[slot] = converted
        elif isinstance(item, list):
            items = list(item)
            container[slot] = items
            for index, child in enumerate(items):
                stack.append((items, index, child))
        elif isinstance(item, datetime | date | time | bytes):
            container[slot] = _scalar_text(item)
    return root[0]


def _scalar_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------
# XML

#: Groups whose children are settings (GUC names): values stay text, names stay as they are.
_VERBATIM_GROUPS = frozenset({"Settings"})
#: XML names that the generic mapping (``-`` back to a space) gets wrong.
_INCREMENTAL_SORT_GROUPS = ("Full-sort Groups", "Pre-sorted Groups")
#: Inside those, ``<Sort-Space>`` is "Sort Space Memory" then "Sort Space Disk"; when only
#: one is printed XML does not say which (memory is by far the common case).
_SORT_SPACES = ("Sort Space Memory", "Sort Space Disk")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_I_O = re.compile(r"(?<![A-Za-z])I O(?![A-Za-z])")


def xml_to_document(text: str) -> dict[str, Any]:
    """The object holding "Plan" from EXPLAIN (FORMAT XML) output (its first ``<Query>``)."""
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise PlanParseError(
            f"{_NOT_A_PLAN}: the XML declares a DOCTYPE or entities, which EXPLAIN never "
            "prints and which are refused for safety; paste the output of EXPLAIN (FORMAT XML)"
        )
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        raise PlanParseError(
            f"{_NOT_A_PLAN}: invalid XML at line {line} column {column + 1}: {reason}"
        ) from exc
    query = _find_query(root)
    try:
        document = _element_object(query)
    except RecursionError as exc:
        raise PlanParseError(f"{_NOT_A_PLAN}: XML nested too deeply") from exc
    if "Plan" not in document:
        raise PlanParseError(
            f"{_NOT_A_PLAN}: the XML has no <Plan> element; paste the output of "
            "EXPLAIN (FORMAT XML)"
        )
    return document


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _json_key(tag: str) -> str:
    """The JSON key of an XML element name: dashes were spaces, except in "I/O"."""
    return _I_O.sub("I/O", _local(tag).replace("-", " "))


def _find_query(root: ET.Element) -> ET.Element:
    name = _local(root.tag)
    if name == "Query":
        return root
    if name == "Plan":  # a bare <Plan> element, copied out of a larger document
        wrapper = ET.Element("Query")
        wrapper.append(root)
        return wrapper
    for element in root.iter():
        if _local(element.tag) == "Query":
            return element
    for element in root.iter():
        if _local(element.tag) == "Plan":
            wrapper = ET.Element("Query")
            wrapper.append(element)
            return wrapper
    raise PlanParseError(
        f"{_NOT_A_PLAN}: the XML root is <{name}>, not <explain> with a <Query>; "
        "paste the output of EXPLAIN (FORMAT XML)"
    )


def _element_object(element: ET.Element, verbatim: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    incremental = iter(_INCREMENTAL_SORT_GROUPS)
    sort_space = iter(_SORT_SPACES)
    for child in element:
        if verbatim:
            key = _local(child.tag)
        elif _local(child.tag) == "Incremental-Sort-Groups":
            key = next(incremental, "Incremental Sort Groups")
        elif _local(child.tag) == "Sort-Space":
            key = next(sort_space, "Sort Space")
        else:
            key = _json_key(child.tag)
        result[key] = _element_value(child, key, verbatim)
    return result


def _element_value(element: ET.Element, key: str, verbatim: bool = False) -> Any:
    children = list(element)
    if key in _LIST_GROUPS:
        return [_entry_value(child) for child in children]
    if children and all(_local(child.tag) == "Item" for child in children):
        return [child.text or "" for child in children]
    if children or key in _OBJECT_GROUPS:
        return _element_object(element, verbatim=key in _VERBATIM_GROUPS)
    text = element.text or ""
    return text if verbatim else _typed(text)


def _entry_value(element: ET.Element) -> Any:
    """One entry of a list group: an object (<Plan>, <Worker>...) or a nested list."""
    children = list(element)
    if children and all(_local(child.tag) == "Item" for child in children):
        return [child.text or "" for child in children]
    return _element_object(element)


def _typed(text: str) -> Any:
    if text == "true":
        return True
    if text == "false":
        return False
    if _NUMBER.fullmatch(text):
        if "." in text or len(text) > 300:  # int() refuses 4300+ digits; no plan has 300
            return float(text)
        return int(text)
    return text
