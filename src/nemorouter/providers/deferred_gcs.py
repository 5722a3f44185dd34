"""Cloud Storage staging for Vertex AI batch inference, through the Storage JSON API with the
provider's Google credentials (the cloud-platform scope covers Storage).

Wire facts (cloud.google.com/storage/docs/json_api/v1/objects/insert, /objects/list,
/objects/get, and cloud.google.com/storage/docs/uploading-objects "simple upload"):
- insert: POST {origin}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={object},
  the bytes as the body, their type as Content-Type; answers the object resource;
- list: GET {origin}/storage/v1/b/{bucket}/o?prefix={prefix}[&pageToken=…] → `items`
  (object resources with `name`) and `nextPageToken` while more remain;
- get media: GET {origin}/storage/v1/b/{bucket}/o/{object}?alt=media, the object's name
  percent-encoded whole (its slashes too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from nemorouter.providers.answer_check import malformed
from nemorouter.providers.deferred_http import DeferredHTTP
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.pooled import json_object

STORAGE_URL = "https://storage.googleapis.com"


def split_gs(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` → ("bucket", "some/prefix")."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    return bucket, name.strip("/")


def _name(value: str) -> str:
    return quote(value, safe="")


class StorageStaging(DeferredHTTP):
    """A batch backend that also writes and reads Cloud Storage objects at `storage_url`."""

    storage_url = STORAGE_URL
    _storage: HTTPPool | None = None

    async def start(self) -> None:
        await super().start()
        if self._storage is None:
            self._storage = HTTPPool(
                self.storage_url,
                max_connections=self._max_connections,
                connect_timeout=self._connect_timeout,
                max_body=self.max_body,
            )

    async def close(self) -> None:
        if self._storage is not None:
            await self._storage.close()
            self._storage = None
        await super().close()

    @property
    def storage(self) -> HTTPPool:
        if self._storage is None:
            raise RuntimeError(f"provider {self.name} used before start()")
        return self._storage

    async def put_object(self, bucket: str, name: str, data: bytes, content_type: bytes) -> None:
        await self.start()
        path = f"/upload/storage/v1/b/{_name(bucket)}/o?uploadType=media&name={_name(name)}"
        await self._send(self.storage, b"POST", path, data, content_type)

    async def list_objects(self, bucket: str, prefix: str) -> list[str]:
        """The names of every object under `prefix`, page after page."""
        await self.start()
        names: list[str] = []
        token = ""
        while True:
            path = f"/storage/v1/b/{_name(bucket)}/o?prefix={_name(prefix)}"
            if token:
                path += f"&pageToken={_name(token)}"
            response = await self._send(self.storage, b"GET", path)
            page: dict[str, Any] = json_object(response.body, "Cloud Storage listed no object")
            for item in page.get("items") or ():
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names.append(item["name"])
            token = page.get("nextPageToken") or ""
            if not token:
                return names
            if not isinstance(token, str):
                raise malformed("Cloud Storage", "a page token that is not a string")

    async def object_lines(self, bucket: str, name: str) -> AsyncIterator[bytes]:
        """An object's non-empty lines, read as they arrive."""
        await self.start()
        path = f"/storage/v1/b/{_name(bucket)}/o/{_name(name)}?alt=media"
        async for line in self._lines(path, pool=self.storage):
            yield line
