"""Read the body of an auto_explain entry: ``duration: X ms  plan:`` and what follows.

auto_explain writes the plan in ``auto_explain.log_format``: text (the default), JSON,
YAML or XML. Each starts with the statement (``Query Text``), which is what ties the
plan to the statement's own log entry and makes it a query when that entry is missing.

The text format does not quote the query text: a multi-line statement simply continues
on the next lines, up to the plan's top node. That node is the first line, at column 0,
that carries the node's estimates, ``(cost=...`` (auto_explain always shows costs) or,
when costs were turned off, ``(actual ...`` / ``(never executed)``.
"""

from __future__ import annotations

import html
import json
import re

_TEXT_QUERY = "Query Text: "
_TOP_NODE = re.compile(r"^\S[^\n]*? \((?:cost=\d|actual (?:time|rows)=|never executed\))", re.M)
_XML_QUERY = re.compile(r"<Query-Text>(.*?)</Query-Text>", re.DOTALL)
_YAML_PLAN = re.compile(r"^Plan: *$", re.M)


def parse_plan_message(body: str) -> tuple[str, object] | None:
    """``(query text, plan)`` from what follows ``plan:``; None when it cannot be read.

    The plan is the parsed document for JSON (a dict with ``Query Text`` and ``Plan``,
    which ``explainer.plan.plan_from_document`` reads) and the text as logged otherwise.
    """
    text = body.strip()
    if text.startswith("{"):
        return _json_plan(text)
    if text.startswith("<"):
        query = _XML_QUERY.search(text)
        return None if query is None else (html.unescape(query.group(1)), text)
    if not text.startswith(_TEXT_QUERY):
        return None
    first_end = text.find("\n")
    if first_end < 0:
        return _quoted(text[len(_TEXT_QUERY) :]), ""
    if _YAML_PLAN.search(text, first_end):
        # YAML quotes the query text the way JSON does (PostgreSQL's escape_yaml).
        return _quoted(text[len(_TEXT_QUERY) : first_end]), text
    node = _TOP_NODE.search(text, first_end + 1)
    split = first_end if node is None else node.start() - 1
    return text[len(_TEXT_QUERY) : split], text[split + 1 :]


def _json_plan(text: str) -> tuple[str, object] | None:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return None
    if not isinstance(document, dict):
        return None
    query = document.get("Query Text")
    if not isinstance(query, str):
        return None
    return query, document


def _quoted(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, str):
            return decoded
    return value
