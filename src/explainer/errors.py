"""The errors explainer raises on purpose.

Every error a user can cause (bad input, a server that cannot be reached, a statement
explainer refuses to run) is an :class:`ExplainerError`. The CLI prints ``str(error)`` as
one line and exits with code 2; anything else is a bug and keeps its traceback. Messages
say what went wrong and, where there is one, what to do about it. They never contain a
password: callers pass redacted DSNs.
"""

from __future__ import annotations


class ExplainerError(Exception):
    """Base class of every error explainer reports to the user as one clear line."""


class InputError(ExplainerError):
    """The input (SQL text, a file, a log, a plan) cannot be used as given."""


class UnsafeStatementError(InputError):
    """A statement explainer will not run: DDL, transaction control, several statements."""


class ConnectionFailed(ExplainerError):
    """The database could not be reached or refused the login."""


class QueryFailed(ExplainerError):
    """The server rejected a statement (syntax error, permission, timeout...)."""


class PlanParseError(InputError):
    """A plan (JSON, text...) could not be read."""


class ServerStartError(ExplainerError):
    """A throwaway PostgreSQL server could not be started."""
