"""Records of JSON logs: jsonlog (PostgreSQL 15+) and two envelopes around other formats.

- jsonlog: one object per line, ``timestamp``, ``pid``, ``user``, ``dbname``,
  ``error_severity``, ``message``, ``detail``, ``statement``, ``application_name``,
  ``vxid``, ``txid``...; keys whose value is empty are left out, so none is required but
  the severity and the message.
- CloudNativePG: the operator re-emits csvlog rows as ``{"logger": "postgres", "msg":
  "record", "record": {"log_time": ..., "process_id": ..., "message": ...}}``, with the
  csvlog column names as keys. Its other lines (the instance manager's own) are skipped.
- Google Cloud SQL (Cloud Logging export): each stderr *line* of the server, prefix
  ``[%p]: [%l-1] db=%d,user=%u `` without a timestamp, is the ``textPayload`` of an
  object whose ``timestamp`` is the time; continuation lines are objects of their own.
  Those lines go through the stderr reader, with the envelope's time in front.

Which one a file is, is decided from its first lines; a line of another kind, or not
JSON, is counted as skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from explainer.capture.model import CaptureStats
from explainer.capture.prefix import TolerantParser
from explainer.capture.records import SEVERITIES, LogRecord, transaction_of
from explainer.capture.stderr import stderr_records

NOT_JSON = "line that is not a JSON object"
NOT_RECORD = "JSON line that is not a PostgreSQL log record"

JSONLOG, CLOUDSQL, CNPG = "jsonlog", "cloudsql", "cnpg"

# A Cloud SQL line once the envelope's timestamp is put in front of its text.
_CLOUDSQL_LINE = TolerantParser(
    re.compile(
        r"(?P<timestamp>\S+) (?:\[(?P<pid>\d+)\]:? )?(?:\[\d+-\d+\] )?(?P<pre>.*?)"
        rf"(?<!\S)(?P<severity>{SEVERITIES}):(?: +|$)(?P<message>.*)"
    )
)


def flavour(head: Sequence[str]) -> str | None:
    """Which JSON log ``head`` starts (``jsonlog``, ``cnpg``, ``cloudsql``), if any."""
    seen_object = False
    for line in head:
        text = line.strip()
        if not text:
            continue
        if not text.startswith("{"):
            return None
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            if not seen_object:
                return None
            continue
        if not isinstance(document, dict):
            return None
        seen_object = True
        kind = _flavour_of(document)
        if kind is not None:
            return kind
    return None


def sniff(head: Sequence[str]) -> bool:
    return flavour(head) is not None


def _flavour_of(document: dict[str, Any]) -> str | None:
    if "error_severity" in document or ("message" in document and "pid" in document):
        return JSONLOG
    record = document.get("record")
    if isinstance(record, dict) and "error_severity" in record:
        return CNPG
    if isinstance(document.get("textPayload"), str):
        return CLOUDSQL
    return None


def json_records(
    lines: Iterable[str], kind: str | None, stats: CaptureStats
) -> Iterator[LogRecord]:
    """Records of a JSON log of flavour ``kind`` (jsonlog when unknown)."""
    if kind == CLOUDSQL:
        return stderr_records(_cloudsql_lines(lines, stats), _CLOUDSQL_LINE, stats)
    return _object_records(lines, CNPG if kind == CNPG else JSONLOG, stats)


def _documents(lines: Iterable[str], stats: CaptureStats) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            stats.skip(NOT_JSON)
            continue
        if isinstance(document, dict):
            yield number, document
        else:
            stats.skip(NOT_JSON)
    stats.lines_read = max(stats.lines_read, number)


def _object_records(lines: Iterable[str], kind: str, stats: CaptureStats) -> Iterator[LogRecord]:
    read = _cnpg_record if kind == CNPG else _jsonlog_record
    for number, document in _documents(lines, stats):
        record = read(document, number)
        if record is None:
            stats.skip(NOT_RECORD)
        else:
            yield record


def _jsonlog_record(document: dict[str, Any], number: int) -> LogRecord | None:
    severity = document.get("error_severity")
    message = document.get("message")
    if not isinstance(severity, str) or not isinstance(message, str):
        return None
    get = document.get
    return LogRecord(
        line=number,
        session=_text(get("pid")) or _text(get("session_id")) or "",
        severity=severity,
        message=message,
        timestamp=_text(get("timestamp")),
        user=_text(get("user")),
        database=_text(get("dbname")),
        application=_text(get("application_name")),
        transaction=transaction_of(_text(get("vxid")), _text(get("txid"))),
        detail=_text(get("detail")),
        context=_text(get("context")),
        statement=_text(get("statement")),
    )


def _cnpg_record(document: dict[str, Any], number: int) -> LogRecord | None:
    record = document.get("record")
    if not isinstance(record, dict):
        return None
    severity = record.get("error_severity")
    message = record.get("message")
    if not isinstance(severity, str) or not isinstance(message, str):
        return None
    get = record.get
    return LogRecord(
        line=number,
        session=_text(get("process_id")) or _text(get("session_id")) or "",
        severity=severity,
        message=message,
        timestamp=_text(get("log_time")),
        user=_text(get("user_name")),
        database=_text(get("database_name")),
        application=_text(get("application_name")),
        transaction=transaction_of(
            _text(get("virtual_transaction_id")), _text(get("transaction_id"))
        ),
        detail=_text(get("detail")),
        context=_text(get("context")),
        statement=_text(get("query")),
    )


def _cloudsql_lines(lines: Iterable[str], stats: CaptureStats) -> Iterator[tuple[int, str]]:
    """The server's lines inside a Cloud Logging export, numbered by the export's lines."""
    for number, document in _documents(lines, stats):
        text = document.get("textPayload")
        if not isinstance(text, str):
            stats.skip(NOT_RECORD)
            continue
        if text[:1] in (" ", "\t"):
            yield number, text
        else:
            yield number, f"{_text(document.get('timestamp')) or '-'} {text}"


def _text(value: object) -> str | None:
    """A field as text; jsonlog leaves empty fields out, csvlog-style sources write ""."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
