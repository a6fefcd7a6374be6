"""The in-app capture's file writer (:mod:`explainer.capture.hook`).

The statement path must cost the application as little as possible, so rendering and
writing are left to a thread of the capture's (:class:`Writer`). Records reach the file
every second, sooner when many wait, at ``close()``, at exit and before ``fork()``
(docs/benchmarks.md has the figures); several processes may share one file.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from explainer.capture.hook_values import encode

__all__ = ["FLUSH_SECONDS", "Render", "Writer"]

FLUSH_SECONDS = 1.0

Render = Callable[[Any], str]


class Writer:
    """Records queued by the application's threads, written by a thread of the capture's.

    The statement path only appends a tuple of what it saw to a deque (thread-safe
    without a lock); the flusher thread turns tuples into JSON lines (values to text,
    timestamps, escapes) and appends them to the file, so that work overlaps the
    application's waits on the database instead of adding to them. It wakes every second,
    or early when 1,024 records wait; past 16,384 the recording thread writes them
    itself, so memory stays bounded whatever the rate. ``O_APPEND`` and whole lines per
    ``os.write`` keep the lines of several processes sharing a file intact.

    Opening ``path`` raises the ``OSError`` of a file that cannot be written (the
    capture turns it into its one-line error).
    """

    WAKE_AT = 1024
    WRITE_AT = 16384

    def __init__(self, path: str, header: Callable[[], dict[str, object]], render: Render) -> None:
        self._fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        self.path = path
        self._header = header
        self._render = render
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()  # one writer at a time: the flusher, close, fork
        self._wake = threading.Event()
        self._closed = False
        self._failed = False
        self._header_due = True
        self.unrendered = 0
        """Records that could not be turned into a line (a bug: see Capture.failures)."""
        self._thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        ref = weakref.ref(self)
        wake = self._wake

        def run() -> None:
            while True:
                wake.wait(FLUSH_SECONDS)
                wake.clear()
                writer = ref()
                if writer is None or writer._closed:
                    return
                writer.flush()
                del writer

        thread = threading.Thread(target=run, name="explainer-capture-flush", daemon=True)
        thread.start()
        return thread

    def put(self, item: Any) -> None:
        """Queue a record: a line (str, newline included) or a tuple ``render`` reads."""
        queue = self._queue
        queue.append(item)
        if len(queue) >= self.WAKE_AT:
            if len(queue) >= self.WRITE_AT:
                self.flush()
            else:
                self._wake.set()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._closed:
            return
        queue = self._queue
        count = len(queue)
        if not count:
            return
        lines: list[str] = []
        if self._header_due:
            self._header_due = False
            lines.append(encode(self._header()) + "\n")
        render = self._render
        for _ in range(count):
            item = queue.popleft()
            if type(item) is str:
                lines.append(item)
                continue
            try:
                lines.append(render(item))
            except Exception:  # a value nothing could convert: the record is dropped
                self.unrendered += 1
        self._write("".join(lines).encode("utf-8"))

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as error:
            if not self._failed:
                self._failed = True
                warnings.warn(
                    f"explainer capture: cannot write {self.path}: {error}; records are lost",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._closed = True
            os.close(self._fd)
        self._wake.set()  # the flusher sees _closed and ends

    # fork(): the child must neither write the parent's queued records again nor inherit a
    # lock another thread held; it starts with a header of its own (a new pid).
    def before_fork(self) -> None:
        self._lock.acquire()
        self._flush_locked()

    def after_fork_in_parent(self) -> None:
        self._lock.release()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._queue.clear()
        self._header_due = True
        if not self._closed:
            self._wake = threading.Event()
            self._thread = self._start_thread()
