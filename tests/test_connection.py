"""DSN forms, redaction, and connection failures as one line (against real servers)."""

from __future__ import annotations

import pytest

from explainer.db.connection import connect, describe_target, normalize_dsn, redact_dsn
from explainer.errors import ConnectionFailed, InputError


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://app:s3cret@db.example:5433/shop",
            "postgresql://app:***@db.example:5433/shop",
        ),
        ("postgresql+psycopg://app:s3cret@db/shop", "postgresql://app:***@db/shop"),
        ("postgresql+psycopg2://app:s3cret@db/shop", "postgresql://app:***@db/shop"),
        (
            "host=db port=5432 dbname=shop user=app password=s3cret",
            "postgresql://app:***@db:5432/shop",
        ),
        ("host=db dbname=shop user=app", "postgresql://app@db/shop"),
        (
            "postgresql://app:s3cret@db/shop?sslmode=require",
            "postgresql://app:***@db/shop?sslmode=require",
        ),
        (None, "(libpq environment)"),
    ],
)
def test_redaction_keeps_the_target_and_drops_the_password(dsn: str | None, expected: str) -> None:
    assert redact_dsn(dsn) == expected
    assert "s3cret" not in redact_dsn(dsn)


def test_sqlalchemy_url_becomes_a_libpq_uri() -> None:
    assert normalize_dsn("postgresql+psycopg://u@h:1/d") == "postgresql://u@h:1/d"
    assert describe_target("postgresql+asyncpg://u@h:1/d").dbname == "d"


def test_garbage_dsn_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a valid DSN"):
        normalize_dsn("this is not a dsn")


def test_unreachable_host_is_one_line() -> None:
    # Port 1 on loopback: nothing listens there, the refusal is immediate.
    with pytest.raises(ConnectionFailed) as info:
        connect("postgresql://postgres:pw@127.0.0.1:1/postgres", connect_timeout=3)
    message = str(info.value)
    assert message.startswith("cannot connect to postgres@127.0.0.1:1/postgres: ")
    assert "refused" in message.lower()
    assert "\n" not in message
    assert "pw" not in message.split(": ", 1)[1]
