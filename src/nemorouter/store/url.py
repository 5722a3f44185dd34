"""`settings.database_url` → the async SQLAlchemy URL of its driver."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from nemorouter.config import ConfigError

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {
    "postgres": "postgresql",
    "postgresql+asyncpg": "postgresql",
    "sqlite+aiosqlite": "sqlite",
}


def async_url(database_url: str) -> URL:
    """`sqlite:///./x.db` → `sqlite+aiosqlite:///./x.db`; `postgresql://…` → asyncpg."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            "settings.database_url",
            f"not a database URL: {database_url!r} (expected sqlite:///PATH or postgresql://…)",
        ) from None
    backend = _ALIASES.get(url.drivername, url.drivername)
    driver = _DRIVERS.get(backend)
    if driver is None:
        raise ConfigError(
            "settings.database_url",
            f"unsupported database {url.drivername!r} (supported: sqlite, postgresql)",
        )
    return url.set(drivername=driver)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def redacted(url: URL) -> str:
    """The URL with any password hidden, for logs and errors."""
    return url.render_as_string(hide_password=True)


def identity(url: URL) -> str:
    """Names one database whatever the spelling of its URL (a SQLite file by its absolute
    path): the shutdown journal is replayed only into the database it was spilled from."""
    if is_sqlite(url):
        memory = url.database in (None, "", ":memory:")
        return "sqlite::memory:" if memory else f"sqlite:{Path(url.database).resolve()}"  # type: ignore[arg-type]
    return redacted(url.set(drivername="postgresql"))


def local_folder(url: URL) -> Path:
    """Where the store's local files go by default: beside a SQLite file, else here."""
    if is_sqlite(url) and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent  # type: ignore[arg-type]
    return Path.cwd()
