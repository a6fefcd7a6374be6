"""Sizes and one-line statements: small text helpers with no dependencies.

They live apart from the modules that first used them (the index advisor, the SQL
renderer) because light callers need them too: the config file's size keys and the
workbench's first screen, which must not pay for importing the advisor, SQLAlchemy and
sqlglot before it can paint (issue 8: the workbench starts in under a second).
"""

from __future__ import annotations

_UNITS = (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("kB", 1024))


def format_size(size: int) -> str:
    """Bytes as PostgreSQL's pg_size_pretty would round them: ``1.5 GB``, ``8 kB``."""
    for unit, factor in _UNITS:
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{size} bytes"


def parse_size(text: str) -> int:
    """``500MB``, ``1 GB``, ``8kB``, ``1024`` (bytes) -> bytes; units are 1024-based as in
    PostgreSQL. ValueError with the accepted forms when the text is none of them."""
    cleaned = text.strip().replace(" ", "")
    number = cleaned.rstrip("BbKkMmGgTtYyEeSs")
    unit = cleaned[len(number) :].upper()
    factors = {"": 1, "B": 1, "BYTES": 1, "K": 1024, "KB": 1024}
    factors |= {u.upper(): f for u, f in _UNITS} | {u[0]: f for u, f in _UNITS if u != "kB"}
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in factors or value < 0:
        raise ValueError(f"not a size: {text!r} (write it like 500MB, 1GB or 8kB)")
    return int(value * factors[unit])


def one_line(text: str, limit: int = 100) -> str:
    """A statement on one line, cut to ``limit`` characters: safe inside a comment."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
