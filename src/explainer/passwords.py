"""Passwords out of text that echoes what a user typed.

argparse repeats the arguments it could not use (``unrecognized arguments: --dsn
postgresql://app:s3cret@db/shop`` when ``explainer workload`` gets a ``--dsn``, or a DSN
typed without ``--dsn``) and would print the password on the terminal, into CI logs.
:class:`ArgumentParser` removes it from every message first. Kept light (no psycopg):
the parser is built on every start, the workbench's included.

:func:`explainer.db.connection.redact_dsn` is for a DSN known to be one; this is for
free text that may hold DSNs anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import NoReturn

_HIDDEN = "***"
# user:password@ of a URI (the password runs to the last @ of the word: an unquoted @ in
# it is a user error libpq reports, and must not leave half of it behind).
_URI_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s:/@]*):\S*@")
# password=... of a key=value string (quoted or not) or of a URI's query.
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^\s&]+)", re.I)


def scrub_passwords(text: str) -> str:
    """``text`` with the passwords of the DSNs in it, and PGPASSWORD's value, replaced."""
    text = _URI_PASSWORD.sub(rf"\g<head>:{_HIDDEN}@", text)
    text = _KEYWORD_PASSWORD.sub(rf"\g<head>{_HIDDEN}", text)
    secret = os.environ.get("PGPASSWORD")
    if secret:
        text = text.replace(secret, _HIDDEN)
    return text


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose error messages never hold a password."""

    def error(self, message: str) -> NoReturn:
        super().error(scrub_passwords(message))
