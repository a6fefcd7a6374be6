"""Call sites for the in-app capture (:mod:`explainer.capture.hook`).

Server logs say what ran; only the application knows *where* it ran from. The site of
a statement is the first frame of the stack outside SQLAlchemy, the standard library,
site-packages and explainer: the line a developer fixes. The walk runs on the
application's statement path, once per recorded statement, so its verdict on each file
is cached and, after warm-up, a frame costs one dict lookup. SQLAlchemy is imported
only when a :class:`CallSites` is made (by :func:`~explainer.capture.hook.install`).
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from collections.abc import Sequence
from types import FrameType
from typing import Any, cast

from explainer.capture.hook_values import quote

__all__ = ["CallSites", "Site", "site_json"]

# A call site as the statement path takes it: the JSON text that starts its object
# ('{"file":"app/views.py","line":', made once per file), its line and its function.
Site = tuple[str, int, str]


class CallSites:
    """The first frame outside SQLAlchemy, the standard library, site-packages and explainer.

    The verdict on each file (library or not, and its name as written) is cached by the
    code's file name, a string whose hash Python keeps: after warm-up a frame costs one
    dict lookup. SQLAlchemy's asyncio runs the
    sync engine in a greenlet whose stack ends at SQLAlchemy; the walk goes on in the
    parent greenlet, where the application's coroutine awaits.
    """

    def __init__(self, skip: Sequence[str]) -> None:
        paths: set[str] = set()
        for name in ("stdlib", "platstdlib", "purelib", "platlib"):
            folder = sysconfig.get_paths().get(name)
            if folder:
                paths.add(folder)
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
        paths.add(os.path.dirname(os.path.dirname(os.__file__)))  # the stdlib's lib/
        import sqlalchemy

        import explainer

        paths.add(os.path.dirname(sqlalchemy.__file__ or ""))
        paths.add(os.path.dirname(explainer.__file__ or ""))
        self._modules = tuple(entry for entry in skip if "/" not in entry and os.sep not in entry)
        paths.update(os.path.abspath(entry) for entry in skip if entry not in self._modules)
        expanded = {p for path in paths if path for p in (path, os.path.realpath(path))}
        self._prefixes = tuple(sorted(path.rstrip(os.sep) + os.sep for path in expanded))
        self._cwd = os.getcwd() + os.sep
        self._files: dict[str, str | None] = {}

    def find(self, frame: FrameType | None) -> Site | None:
        """The first application frame from ``frame`` up; None when every one is a library's."""
        files = self._files
        current: Any = None
        while True:
            while frame is not None:
                code = frame.f_code
                where = files.get(code.co_filename, _UNSEEN)
                if where is _UNSEEN:
                    where = files[code.co_filename] = self._where(frame)
                if where is not None:
                    name = code.co_name
                    if name in _COMPREHENSIONS:
                        name = _named(frame)
                    return cast(str, where), frame.f_lineno, name
                frame = frame.f_back
            greenlet = sys.modules.get("greenlet")
            if greenlet is None:
                return None
            current = greenlet.getcurrent() if current is None else current.parent
            if current is None or current.parent is None:
                return None
            frame = current.parent.gr_frame

    def _where(self, frame: FrameType) -> str | None:
        """A file's verdict: the start of its sites' JSON, or None for a library's."""
        filename = frame.f_code.co_filename
        if not filename or filename.startswith("<"):
            return None  # generated code (SQLAlchemy makes some), frozen modules
        path = os.path.abspath(filename)
        if path.startswith(self._prefixes) or (
            f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path
        ):
            return None
        if self._modules:
            module = str(frame.f_globals.get("__name__", ""))
            if any(module == name or module.startswith(name + ".") for name in self._modules):
                return None
        if path.startswith(self._cwd):
            path = path[len(self._cwd) :]
        return f'{{"file":{quote(path)},"line":'


_UNSEEN = object()


_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})


def _named(frame: FrameType) -> str:
    """The function a frame runs; a comprehension (its own frame before Python 3.12) is
    named after the function it is written in, which is what a reader looks for."""
    code = frame.f_code
    name = code.co_name
    while name in _COMPREHENSIONS and frame.f_back is not None:
        frame = frame.f_back
        if frame.f_code.co_filename != code.co_filename:
            break
        name = frame.f_code.co_name
    return name


def site_json(call_site: Site | None) -> str:
    """A call site as the JSON the record's ``site`` holds (``null`` when none was found)."""
    if call_site is None:
        return "null"
    start, line, function = call_site
    return f'{start}{line},"function":{quote(function)}}}'
