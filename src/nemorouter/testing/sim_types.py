"""Value types and HTTP response helpers shared by the simulated provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

_FAULT_KINDS = ("status", "hang", "drop", "cut_stream", "latency", "malformed", "answer")
_MALFORMED = (
    "error_in_200", "choices_not_list", "absurd_usage", "gzip_bomb", "garbage_gzip", "oversized"
)  # fmt: skip
_SUMMARY_BODY_CHARS = 4096  # the /_sim/requests view truncates bodies (images are huge)


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure the simulated provider applies to one upcoming chat request.

    Build with the factory methods: `Fault.status(503)`, `Fault.hang(30)`, `Fault.drop()`,
    `Fault.cut_stream(after_chunks=2)`, `Fault.latency(ms)`, and 200s that are no answer:
    `Fault.error_in_200()`, `Fault.choices_not_list()`, `Fault.absurd_usage(tokens)`,
    `Fault.gzip_bomb(mib)`, `Fault.garbage_gzip()`, `Fault.oversized(mib)` (see sim_malformed),
    and a well-formed answer that is not what was asked: `Fault.answer(text)`.
    """

    kind: str
    code: int = 0
    retry_after: float | None = None
    retry_after_ms: int | None = None
    seconds: float = 0.0
    after_chunks: int = 0
    ms: float = 0.0
    variant: str = ""  # of a malformed answer
    size: int = 0  # MiB of a gzip bomb or oversized body; tokens of absurd usage
    content: str = ""  # of a wrong answer

    @classmethod
    def status(
        cls, code: int, retry_after: float | None = None, retry_after_ms: int | None = None
    ) -> Fault:
        """Answer with HTTP `code` and an OpenAI-shaped error body."""
        return cls("status", code=code, retry_after=retry_after, retry_after_ms=retry_after_ms)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Fault:
        """Accept the request, send nothing for `seconds`, then close the connection."""
        return cls("hang", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the TCP connection without any response."""
        return cls("drop")

    @classmethod
    def cut_stream(cls, after_chunks: int = 2) -> Fault:
        """Stream: N content chunks then close (no finish, no [DONE]); else half a body."""
        return cls("cut_stream", after_chunks=after_chunks)

    @classmethod
    def latency(cls, ms: float) -> Fault:
        """Extra delay for that request only, then a normal answer."""
        return cls("latency", ms=ms)

    @classmethod
    def error_in_200(cls) -> Fault:
        """Answer 200 with the wire format's error object as the body (or first event)."""
        return cls("malformed", variant="error_in_200")

    @classmethod
    def choices_not_list(cls) -> Fault:
        """Answer 200 whose choices (candidates, content) are an object or a string."""
        return cls("malformed", variant="choices_not_list")

    @classmethod
    def absurd_usage(cls, tokens: int = 10**13) -> Fault:
        """Answer normally, but report `tokens` prompt tokens."""
        return cls("malformed", variant="absurd_usage", size=tokens)

    @classmethod
    def gzip_bomb(cls, mib: int = 200) -> Fault:
        """Answer with a ~1000:1 gzip body that inflates to `mib` MiB."""
        return cls("malformed", variant="gzip_bomb", size=max(2, mib))

    @classmethod
    def garbage_gzip(cls) -> Fault:
        """Answer with `content-encoding: gzip` and a body that is not gzip."""
        return cls("malformed", variant="garbage_gzip")

    @classmethod
    def oversized(cls, mib: int = 40) -> Fault:
        """Answer with a `mib` MiB body (one event that large for a stream)."""
        return cls("malformed", variant="oversized", size=mib)

    @classmethod
    def answer(cls, content: str) -> Fault:
        """Answer normally (200, usage), but with `content` as the answer's text: an answer
        a client must refuse (not a label, not valid JSON)."""
        return cls("answer", content=content)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Parse the `POST /_sim/faults` body."""
        kind = data.get("kind")
        if kind == "status":
            return cls.status(
                int(data["status"]), data.get("retry_after"), data.get("retry_after_ms")
            )
        if kind == "hang":
            return cls.hang(float(data.get("seconds", 30.0)))
        if kind == "drop":
            return cls.drop()
        if kind == "cut_stream":
            return cls.cut_stream(int(data.get("after_chunks", 2)))
        if kind == "latency":
            return cls.latency(float(data["ms"]))
        if kind == "answer":
            return cls.answer(str(data["content"]))
        if kind == "malformed":
            variant = data.get("variant")
            if variant not in _MALFORMED:
                raise ValueError(f"unknown malformed variant {variant!r}: one of {_MALFORMED}")
            return cls("malformed", variant=variant, size=int(data.get("size", 0)))
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(_FAULT_KINDS)}")


class RecordedRequest:
    """A chat request as received: raw body bytes, headers decoded and JSON parsed on demand."""

    __slots__ = ("_headers", "_json", "_raw_headers", "at", "body", "method", "path")

    def __init__(
        self, method: str, path: str, raw_headers: list[tuple[bytes, bytes]], body: bytes, at: float
    ) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.at = at  # time.monotonic() when the request was complete
        self._raw_headers = raw_headers
        self._headers: dict[str, str] | None = None
        self._json: Any = None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {
                n.decode("latin-1").lower(): v.decode("latin-1") for n, v in self._raw_headers
            }
        return self._headers

    def json(self) -> Any:
        if self._json is None:
            self._json = msgspec.json.decode(self.body)
        return self._json

    def summary(self) -> dict[str, Any]:
        text = self.body[: _SUMMARY_BODY_CHARS * 4].decode("utf-8", "replace")
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": text[:_SUMMARY_BODY_CHARS],
            "body_bytes": len(self.body),
            "at": self.at,
        }

    def __repr__(self) -> str:
        return f"RecordedRequest({self.method} {self.path}, {len(self.body)} bytes)"
