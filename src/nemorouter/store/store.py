"""The store as the gateway holds it: one engine, migrated at start, and its spend writer.

At start, after the migrations, spend records a previous process spilled to its shutdown
journal are written (spend_journal). At close, the writer has its bound, then the engine.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from nemorouter.store.engine import create_engine, ping, upgrade
from nemorouter.store.spend_journal import replay
from nemorouter.store.url import identity, local_folder, redacted
from nemorouter.store.writer import CLOSE_TIMEOUT_S, SpendWriter

log = logging.getLogger("nemorouter.store")
DEAD_LETTER_FILE = "nemorouter-spend-deadletter.jsonl"
DISPOSE_TIMEOUT_S = 5.0


class Store:
    def __init__(
        self,
        database_url: str,
        *,
        journal_dir: str | None = None,
        dead_letter_path: str | None = None,
    ) -> None:
        self.engine = create_engine(database_url)  # connects lazily, inside the server's loop
        folder = local_folder(self.engine.url)
        self.journal_dir = Path(journal_dir) if journal_dir else folder
        self.identity = identity(self.engine.url)
        self.writer = SpendWriter(
            self.engine,
            dead_letter_path=Path(dead_letter_path)
            if dead_letter_path
            else folder / DEAD_LETTER_FILE,
            journal_dir=self.journal_dir,
            database=self.identity,
        )

    @property
    def description(self) -> str:
        return redacted(self.engine.url)

    async def start(self) -> None:
        await upgrade(self.engine)
        await replay(self.engine, self.journal_dir, self.identity, self.writer.dead_letter)
        self.writer.start()

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        await self.writer.close(timeout_s)
        try:  # a database that went away may not even answer the goodbye
            await asyncio.wait_for(self.engine.dispose(), DISPOSE_TIMEOUT_S)
        except Exception as exc:
            log.warning("store: closing the connections failed (%s); going on", type(exc).__name__)

    async def ready(self) -> bool:
        return await ping(self.engine)
