"""A simulated Cloud Storage JSON API (the calls batch staging makes), served by a simulated
provider: the objects Vertex AI batch inference reads and writes live here.

Shapes follow cloud.google.com/storage/docs/json_api/v1/objects (insert with
`uploadType=media`, list with `prefix` / `pageToken` / `maxResults`, get with `alt=media`,
also at the /download/storage/v1 media link the python-storage client uses). A bearer token
is checked like the provider's Vertex calls. `page_size` (default 1000, the API's) pages
listings.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_batch_clock import rfc3339

if TYPE_CHECKING:
    from nemorouter.testing.sim_native import NativeSimulator

_UPLOAD = re.compile(rb"^/upload/storage/v1/b/([^/]+)/o$")
_LIST = re.compile(rb"^/storage/v1/b/([^/]+)/o$")
_OBJECT = re.compile(rb"^(?:/download)?/storage/v1/b/([^/]+)/o/(.+)$")


class StorageAPI:
    """Buckets of objects over one simulated provider; `before_read` lets a simulated batch
    job write its output before anyone looks."""

    def __init__(self, sim: NativeSimulator) -> None:
        self.sim = sim
        self.objects: dict[tuple[str, str], tuple[bytes, str, float]] = {}
        self.page_size = 1000
        self.before_read: Callable[[], None] = lambda: None

    def put(self, bucket: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        self.objects[(bucket, name)] = (data, content_type, time.time())
        return self.resource(bucket, name)

    def get(self, bucket: str, name: str) -> bytes | None:
        found = self.objects.get((bucket, name))
        return found[0] if found else None

    def resource(self, bucket: str, name: str) -> dict[str, Any]:
        data, content_type, at = self.objects[(bucket, name)]
        return {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/1",
            "name": name,
            "bucket": bucket,
            "generation": "1",
            "contentType": content_type,
            "size": str(len(data)),
            "timeCreated": rfc3339(at),
            "updated": rfc3339(at),
        }

    def route(
        self,
        method: bytes,
        url: bytes,
        path: bytes,
        headers: http.Headers,
        body: bytes,
        auth: bytes | None,
    ) -> bytes | None:
        upload, listing, obj = _UPLOAD.match(path), _LIST.match(path), _OBJECT.match(path)
        if not (upload or listing or obj):
            return None
        from nemorouter.testing.sim_gemini import google_error, unauthenticated

        self.sim.note(method, url, headers, body)
        if self.sim.bearer_refused(auth):
            return unauthenticated()
        query = {k: v[0] for k, v in parse_qs(url.partition(b"?")[2].decode()).items()}
        self.before_read()
        if upload:
            name = query.get("name")
            if method != b"POST" or query.get("uploadType") != "media" or not name:
                return google_error(400, "Upload requests must include an uploadType and a name.")
            named = {n.lower(): v for n, v in headers}
            kind = named.get(b"content-type", b"application/octet-stream").decode()
            return http.json_response(200, self.put(upload[1].decode(), name, body, kind))
        if method != b"GET":
            return google_error(405, "Method not allowed.")
        if listing:
            return self._list(unquote(listing[1].decode()), query)
        assert obj is not None
        bucket, name = unquote(obj[1].decode()), unquote(obj[2].decode())
        data = self.get(bucket, name)
        if data is None:
            return google_error(404, f"No such object: {bucket}/{name}")
        if query.get("alt") != "media":
            return http.json_response(200, self.resource(bucket, name))
        head = b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
        return head % (self.objects[(bucket, name)][1].encode(), len(data)) + data

    def _list(self, bucket: str, query: dict[str, str]) -> bytes:
        prefix = query.get("prefix", "")
        names = sorted(n for b, n in self.objects if b == bucket and n.startswith(prefix))
        start = int(query.get("pageToken") or 0)
        size = min(int(query.get("maxResults") or self.page_size), self.page_size)
        page = names[start : start + size]
        listing: dict[str, Any] = {"kind": "storage#objects"}
        if page:
            listing["items"] = [self.resource(bucket, name) for name in page]
        if start + size < len(names):
            listing["nextPageToken"] = str(start + size)
        return http.json_response(200, listing)
