"""The store as the gateway holds it: one engine, migrated at start, and its spend writer."""

from __future__ import annotations

from nemorouter.store.engine import create_engine, ping, upgrade
from nemorouter.store.url import redacted
from nemorouter.store.writer import SpendWriter


class Store:
    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)  # connects lazily, inside the server's loop
        self.writer = SpendWriter(self.engine)

    @property
    def description(self) -> str:
        return redacted(self.engine.url)

    async def start(self) -> None:
        await upgrade(self.engine)
        self.writer.start()

    async def close(self) -> None:
        await self.writer.close()
        await self.engine.dispose()

    async def ready(self) -> bool:
        return await ping(self.engine)
