"""Connections: DSN forms users already have, redaction, and failures as one clear line.

Users arrive with a libpq URI (``postgresql://...``), a key=value string, an SQLAlchemy URL
(``postgresql+psycopg://...``) from their app's settings, or nothing at all and the libpq
environment (PGHOST, PGUSER, ~/.pgpass, service files). All of them end up as a libpq
conninfo string that psycopg understands; the SQLAlchemy driver suffix is the only thing
libpq would not accept.

A password must never reach the output, a log or a report, so everything shown to a user
goes through :func:`redact_dsn`, and connection errors are rebuilt from the parsed target
and the server's reason rather than echoing the DSN.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from explainer.errors import ConnectionFailed, InputError

_SQLALCHEMY_SCHEME = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://", re.IGNORECASE)

#: Who explainer says it is in pg_stat_activity, so a DBA can see (and cancel) it.
APPLICATION_NAME = "explainer"


@dataclass(frozen=True, slots=True)
class ConnectionTarget:
    """Where a DSN points, without its secret: what error messages and reports show."""

    host: str
    port: str
    dbname: str
    user: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


def normalize_dsn(dsn: str | None) -> str:
    """Turn any accepted DSN form into a libpq conninfo string.

    ``None`` or an empty string means "use the libpq environment", which libpq does by
    itself when given an empty conninfo.
    """
    if not dsn:
        return ""
    dsn = dsn.strip()
    dsn = _SQLALCHEMY_SCHEME.sub(lambda m: "postgresql://", dsn, count=1)
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise InputError(f"not a valid DSN: {_scrub(str(exc), dsn)}") from None
    return dsn


def _params(dsn: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError:
        return {}


def describe_target(dsn: str) -> ConnectionTarget:
    """Where libpq will connect for this DSN, filling the gaps from the environment."""
    params = _params(normalize_dsn(dsn))
    user = params.get("user") or os.environ.get("PGUSER") or _login_name()
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    return ConnectionTarget(
        host=host,
        port=params.get("port") or os.environ.get("PGPORT") or "5432",
        dbname=params.get("dbname") or os.environ.get("PGDATABASE") or user,
        user=user,
    )


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # getuser raises a variety of errors when there is no login name
        return "postgres"


def redact_dsn(dsn: str | None) -> str:
    """A DSN safe to print: the same target as a URI, the password replaced by ``***``."""
    params = _params(normalize_dsn(dsn)) if dsn else {}
    if not params:
        return "(libpq environment)" if not dsn else "(unparsable DSN)"
    user = params.pop("user", "")
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", "")
    dbname = params.pop("dbname", "")
    userinfo = quote(user, safe="") + (":***" if password is not None else "")
    netloc = (userinfo + "@" if userinfo else "") + (host if not host.startswith("/") else "")
    if port:
        netloc += f":{port}"
    if host.startswith("/"):
        params["host"] = host
    query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in sorted(params.items()))
    return f"postgresql://{netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def _scrub(message: str, dsn: str) -> str:
    """Remove the DSN's password from a message libpq or psycopg wrote."""
    password = _params(dsn).get("password")
    if password:
        message = message.replace(password, "***")
    for env_password in (os.environ.get("PGPASSWORD"),):
        if env_password:
            message = message.replace(env_password, "***")
    return message


def _first_reason(message: str) -> str:
    """The server's reason from a libpq error, which often spans several lines."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in lines:
        # libpq prefixes the useful part with 'connection to server at ... failed: '
        match = re.search(r".*failed:\s*(.+)$", line)
        if match:
            return match.group(1)
    return lines[0] if lines else "unknown error"


def connect(
    dsn: str | None, *, connect_timeout: int = 10, autocommit: bool = True
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection, or raise :class:`ConnectionFailed` with one readable line.

    Autocommit is the default because explainer manages its transactions explicitly:
    every statement it explains runs inside a ``BEGIN ... ROLLBACK`` that it opens itself.
    """
    conninfo = normalize_dsn(dsn)
    target = describe_target(conninfo)
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=APPLICATION_NAME,
        )
    except psycopg.OperationalError as exc:
        reason = _scrub(_first_reason(str(exc)), conninfo)
        raise ConnectionFailed(f"cannot connect to {target}: {reason}") from None
