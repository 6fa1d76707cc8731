"""Storage URLs: from a path or a URL, redacted for messages, and the driver SQLAlchemy gets."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import quote, unquote

import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

from hpsearch.errors import ConfigError, StorageError

_SECRET_PARAMS = ("password", "passwd", "pass", "sslpassword")


def storage_url(path_or_url: str) -> str:
    """A storage URL from either a URL or the path of an SQLite file."""
    return path_or_url if "://" in path_or_url else f"sqlite:///{path_or_url}"


def _normalized(url: str) -> str:
    """The URL with a password typed with a raw ``@`` or ``:`` percent-encoded: everything up to the
    last ``@`` before the host is the user and password (SQLAlchemy would split at the first)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    userinfo, _, host = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://{user}{colon}{quote(unquote(password), safe='')}@{host}{slash}{tail}"


def _parsed(url: str) -> URL | None:
    try:
        return make_url(_normalized(url))
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None


def redact(url: str) -> str:
    """The URL with its password, in the user part or a query parameter, replaced by ``***``."""
    parsed = _parsed(url)
    if parsed is None:
        return url.split("://", 1)[0] + "://***" if "://" in url else url
    secret = {k for k in parsed.query if k.lower() in _SECRET_PARAMS}
    if parsed.password is None and not secret:
        return url  # nothing to hide: keep the URL as the user typed it
    query = {k: ("***" if k in secret else v) for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def engine_url(url: str) -> str:
    """The URL SQLAlchemy gets: a bare ``postgresql://`` names psycopg 3, or psycopg2 where only it is installed.

    (SQLAlchemy 2.0 reads a bare ``postgresql://`` as psycopg2, 2.1 as psycopg 3.)

    Raises:
        StorageError: a ``postgresql://`` URL on a machine with neither driver.
    """
    normal = _normalized(url)
    if not url.startswith("postgresql://"):
        return normal
    for module, driver in (("psycopg", "postgresql+psycopg://"), ("psycopg2", "postgresql+psycopg2://")):
        if importlib.util.find_spec(module) is not None:
            return normal.replace("postgresql://", driver, 1)
    raise StorageError(
        f"{redact(url)} needs a PostgreSQL driver: pip install 'hpsearch[postgres]' (psycopg 3) or psycopg2"
    )


def sqlite_path(url: str) -> Path | None:
    """The file an ``sqlite:///`` URL names, or None for other storages and in-memory SQLite."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


def check_shared(url: str, jobs: int) -> None:
    """Refuse ``--jobs`` above 1 on in-memory SQLite, which other processes cannot open."""
    if jobs > 1 and url.startswith("sqlite:") and sqlite_path(url) is None:
        raise ConfigError(f"--jobs {jobs} needs a storage that several processes share, but got {redact(url)}")
