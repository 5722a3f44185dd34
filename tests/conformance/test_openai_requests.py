"""The OpenAI-compatible adapter against the openai SDK: the canonical request is already this
wire format, so the adapter's request must be what `chat.completions.create` sends for the same
arguments (path, auth header, JSON body), apart from the differences listed in `KNOWN`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from . import cases as c
from .compare import request_differences
from .harness import OPENAI_KEY, OPENAI_MODEL, answer_text, send
from .recorder import Recorded, Recorder


def sdk_request(recorder: Recorder, name: str) -> Recorded:
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=f"{recorder.origin}/v1", max_retries=0)
    answer = client.chat.completions.create(model=OPENAI_MODEL, **c.CASES[name])
    if c.CASES[name].get("stream"):
        assert "".join(ch.choices[0].delta.content or "" for ch in answer if ch.choices) == "ok"
    else:
        assert answer.choices[0].message.content == "ok"
    return recorder.take()


def header_view(request: Recorded) -> dict[str, Any]:
    headers = request.headers
    return {k: headers.get(k) for k in ("content-type", "authorization")}


KNOWN: dict[str, dict[str, str]] = {
    "stream": {
        "/stream_options": "the gateway costs every stream, so the adapter always asks for the"
        " final usage chunk (stream_options.include_usage) and drops it for a client that did not"
    },
}


@pytest.mark.parametrize("name", list(c.CASES))
async def test_openai_request_matches_sdk(name: str, recorder: Recorder, key_file: Path) -> None:
    result = await send("openai", recorder.origin, key_file, c.CASES[name])
    assert answer_text(result) in ("ok", "{}")  # the canned answer, read by the adapter
    ours = recorder.take()
    theirs = sdk_request(recorder, name)
    found = request_differences(ours, theirs, lambda body: body, header_view)
    assert found == set(KNOWN.get(name, {})), json.dumps([ours.body, theirs.body])[:4000]
