"""The OpenAI surface, driven by the official SDK: completions, streams, image parts."""

from __future__ import annotations

import base64
import hashlib
import os

import openai

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

from .helpers import USER, read_stream


def image_data_url(size: int) -> str:
    payload = os.urandom(size)
    return "data:image/jpeg;base64," + base64.b64encode(payload).decode()


def test_completion_with_headers(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Simulated answer from gemini-2.5-pro")
    assert completion.model == "gemini-2.5-pro"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-nemo-model"] == "gemini-2.5-pro"
    assert raw.headers["x-nemo-deployment"] == "pro"
    assert raw.headers["x-nemo-attempts"] == "1"
    assert raw.headers["x-nemo-fallbacks"] == "0"
    assert raw.headers["x-request-id"].startswith("req_")
    assert float(raw.headers["x-nemo-overhead-ms"]) >= 0
    assert len(sim.requests) == 1


def test_client_request_id_is_kept(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-pro", messages=USER, extra_headers={"x-request-id": "batch-7-page-3"}
    )
    assert raw.headers["x-request-id"] == "batch-7-page-3"


def test_upstream_sees_provider_model_without_gateway_fields(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=USER,
        temperature=0,
        extra_body={"tags": ["vision"], "metadata": {"job_id": "j-1"}, "nemo_cache": False},
    )
    sent = sim.requests[-1].json()
    assert sent["model"] in {"flash-upstream-a", "flash-upstream-b"}
    assert sent["temperature"] == 0
    assert not {"tags", "metadata", "nemo_cache"} & set(sent)


def test_answers_carry_the_model_label_not_the_provider_model(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    """The provider answers as `flash-upstream-*`; the client sees the configured model name
    (the adapter labels completions and every chunk with its target's model)."""
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert sim.requests[-1].json()["model"].startswith("flash-upstream-")
    assert completion.model == "gemini-2.5-flash"
    streamed = read_stream(
        client.chat.completions.create(
            model="document-vision",  # a group: the label is the model that answered
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {chunk.model for chunk in streamed.chunks} == {"gemini-2.5-pro"}


def test_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    streamed = read_stream(
        client.chat.completions.create(
            model="gemini-2.5-pro",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert streamed.text == full.choices[0].message.content
    assert streamed.finish == "stop"
    assert streamed.usage is not None and streamed.usage.completion_tokens > 0
    assert {c.model for c in streamed.chunks} == {"gemini-2.5-pro"}


def test_streaming_headers(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gemini-2.5-pro", messages=USER, stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-nemo-deployment"] == "pro"
        assert sum(1 for _ in response.iter_lines()) > 0


def test_image_parts_pass_byte_identical(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    url = image_data_url(300 * 1024)
    content = [
        {"type": "text", "text": "Extract the invoice number."},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": url[:5000] + "AAAA"}},
    ]
    answer = client.chat.completions.create(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": content}]
    )
    assert "2 image(s)" in (answer.choices[0].message.content or "")
    sent = sim.requests[-1].json()["messages"][0]["content"]
    assert sent == content
    digest = hashlib.sha256(sent[1]["image_url"]["url"].encode()).hexdigest()
    assert digest == hashlib.sha256(url.encode()).hexdigest()


def test_json_schema_answer_validates(client: openai.OpenAI) -> None:
    import json

    import jsonschema

    schema = {
        "type": "object",
        "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
        "required": ["invoice_number", "total"],
        "additionalProperties": False,
    }
    answer = client.chat.completions.create(
        model="document-vision",
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": schema},
        },
    )
    jsonschema.validate(json.loads(answer.choices[0].message.content or ""), schema)
    assert answer.model == "gemini-2.5-pro"


def test_two_deployments_share_the_load(gateway: BackgroundGateway, sim: SimulatedProvider) -> None:
    import concurrent.futures

    sim.latency_ms = 30
    client = openai.OpenAI(base_url=gateway.base_url, api_key="sk-test-master-key", max_retries=0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: client.chat.completions.create(model="gemini-2.5-flash", messages=USER),
                range(16),
            )
        )
    models = [r.json()["model"] for r in sim.requests]
    assert models.count("flash-upstream-a") >= 5
    assert models.count("flash-upstream-b") >= 5


def test_models_listing(client: openai.OpenAI) -> None:
    listing = client.models.list()
    ids = [m.id for m in listing.data]
    assert ids == ["gemini-2.5-flash", "gemini-2.5-pro", "document-vision", "auto"]
    pro = listing.data[1].model_dump()
    assert "vision" in pro["tags"]
    assert pro["context_window"] == 1048576
    assert pro["pricing"] == {"input_per_mtok": "1.25", "output_per_mtok": "10.00"}
    assert pro["provider"] == "sim"


def test_models_listing_offers_auto_and_fills_in_groups(client: openai.OpenAI) -> None:
    """Every name a request may send is listed, with no null field for a group or auto."""
    listing = {m.id: m.model_dump() for m in client.models.list().data}
    flash, pro = listing["gemini-2.5-flash"], listing["gemini-2.5-pro"]
    fields = ("provider", "deployments", "tags", "context_window", "max_output_tokens", "pricing")
    for name, chain in (
        ("document-vision", ["gemini-2.5-pro", "gemini-2.5-flash"]),
        ("auto", ["gemini-2.5-flash", "gemini-2.5-pro"]),
    ):
        entry = listing[name]
        assert [field for field in fields if entry.get(field) is None] == [], entry
        assert entry["group"] == chain
        members = [listing[model] for model in chain]
        assert entry["deployments"] == [d for m in members for d in m["deployments"]]
        assert set(entry["tags"]) == set(flash["tags"]) | set(pro["tags"])
        assert entry["context_window"] == max(flash["context_window"], pro["context_window"])
        assert entry["max_output_tokens"] == max(m["max_output_tokens"] for m in members)
        assert entry["pricing"] == pro["pricing"]  # the dearer rates: the most a call costs
        assert entry["provider"] == "sim"
