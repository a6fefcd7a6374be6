"""Stopping every throwaway server still running at interpreter exit, on SIGTERM or SIGHUP.

A server that is not kept must not outlive the process that started it, however that process
ends: servers register here while they run, and an atexit hook (plus SIGTERM/SIGHUP handlers
that turn those signals into a normal exit) stops whatever is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from explainer.db.server.cluster import ThrowawayServer


_live: dict[int, ThrowawayServer] = {}
_live_lock = threading.RLock()
_atexit_registered = False
_CLEANUP_SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so ``finally``, ``with`` and atexit run."""
    raise SystemExit(128 + signum)


def _register(server: ThrowawayServer) -> None:
    global _atexit_registered
    with _live_lock:
        if not _atexit_registered:
            atexit.register(_stop_all_at_exit)
            _atexit_registered = True
        if not _live:
            _install_signal_handlers()
        _live[id(server)] = server


def _unregister(server: ThrowawayServer) -> None:
    with _live_lock:
        _live.pop(id(server), None)
        if not _live:
            _restore_signal_handlers()


def _install_signal_handlers() -> None:
    """Default SIGTERM/SIGHUP kill us without running atexit; replace only those defaults.

    A caller's own handler is left alone (it decides how to exit; atexit still runs if it
    exits normally). Ctrl+C needs nothing: KeyboardInterrupt unwinds and atexit runs.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _CLEANUP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _exit_on_signal)


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _CLEANUP_SIGNALS:
        if signal.getsignal(signum) == _exit_on_signal:
            signal.signal(signum, signal.SIG_DFL)


def _stop_all_at_exit() -> None:
    """Stop every server this process started and did not keep.

    Signals are blocked meanwhile so a second Ctrl+C does not leave half a data dir behind.
    A forked child inherits ``_live`` but must not stop its parent's servers: pid check.
    """
    with contextlib.suppress(AttributeError, ValueError, OSError):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, *_CLEANUP_SIGNALS})
    with _live_lock:
        servers = list(_live.values())
    for server in servers:
        if server.owner_pid == os.getpid():
            try:
                server.stop()
            except Exception as exc:  # keep going: the other servers still need stopping
                print(f"explainer: could not stop a throwaway server: {exc}", file=sys.stderr)
