"""Storage URLs: passwords never printed, whatever they hold; the driver a bare postgresql:// gets."""

from __future__ import annotations

import importlib.util

import pytest

from hpsearch.errors import StorageError
from hpsearch.store import engine_url, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://hp:s3cret@dbhost/hpsearch", "postgresql://hp:***@dbhost/hpsearch"),
        ("postgresql://hp:p@ss@dbhost:5432/db", "postgresql://hp:***@dbhost:5432/db"),
        ("postgresql://hp:a:b@dbhost/db", "postgresql://hp:***@dbhost/db"),
        (
            "postgresql://hp@dbhost/db?password=s3cret&sslmode=require",
            "postgresql://hp@dbhost/db?password=***&sslmode=require",
        ),
        ("postgresql+psycopg://hp:s3cret@dbhost/db", "postgresql+psycopg://hp:***@dbhost/db"),
        ("sqlite:///study.db", "sqlite:///study.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://hp@dbhost/db", "postgresql://hp@dbhost/db"),
    ],
)
def test_redact_hides_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url) and "ss@" not in redact(url)


def test_a_password_with_at_reaches_the_driver_whole() -> None:
    # everything up to the last @ before the host is the user and password
    assert engine_url("postgresql://hp:p@ss@dbhost/db").endswith("://hp:p%40ss@dbhost/db")


def test_without_a_postgres_driver_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name.startswith("psycopg") else real(name))
    with pytest.raises(StorageError, match=r"pip install 'hpsearch\[postgres\]'"):
        engine_url("postgresql://hp:s3cret@dbhost/db")


def test_psycopg2_is_taken_where_psycopg_3_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    fake = real("json")  # any spec: "installed"
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: {"psycopg": None, "psycopg2": fake}.get(name, real(name))
    )
    assert engine_url("postgresql://hp@dbhost/db") == "postgresql+psycopg2://hp@dbhost/db"
