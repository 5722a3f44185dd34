"""The cost of every call: in the headers and the body, streamed calls from final usage."""

from __future__ import annotations

import time
from decimal import Decimal

import openai

from nemorouter.admin_client import AdminClient, AdminError
from nemorouter.catalog import load_catalog
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

from .conftest import MASTER_KEY

USER = [{"role": "user", "content": "Total of this invoice?"}]


def expected(model: str, prompt: int, completion: int) -> Decimal:
    rates = load_catalog()[model].pricing.rates(prompt)
    return (prompt * rates.input_per_mtok + completion * rates.output_per_mtok) / 1_000_000


def test_completion_cost_in_headers_and_body(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=USER)
    completion = raw.parse()
    assert completion.usage is not None
    cost = expected(
        "gemini-2.5-pro", completion.usage.prompt_tokens, completion.usage.completion_tokens
    )
    assert Decimal(raw.headers["x-nemo-response-cost"]) == cost
    assert raw.headers["x-litellm-response-cost"] == raw.headers["x-nemo-response-cost"]
    assert completion.usage.model_dump()["cost"] == raw.headers["x-nemo-response-cost"]


def test_stream_is_costed_from_its_final_usage(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    stream = client.chat.completions.create(
        model="gemini-2.5-pro", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usage) == 1
    cost = expected("gemini-2.5-pro", usage[0].prompt_tokens, usage[0].completion_tokens)
    assert Decimal(usage[0].model_dump()["cost"]) == cost


def test_stream_usage_is_fetched_but_not_forced_on_the_client(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    stream = client.chat.completions.create(model="gemini-2.5-pro", messages=USER, stream=True)
    chunks = list(stream)
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk it did not ask for
    assert sim.requests[-1].json()["stream_options"] == {"include_usage": True}


def test_a_streams_cost_is_in_its_usage_chunk_and_its_spend_record(
    client: openai.OpenAI, gateway: BackgroundGateway
) -> None:
    """docs/gateway.md (HTTP API): a stream's headers leave before its usage exists, so they carry no cost; the
    cost is `usage.cost` in the final usage chunk (with stream_options.include_usage) and
    in the spend record, the same number."""
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-pro", messages=USER, stream=True,
        stream_options={"include_usage": True}, extra_body={"metadata": {"job_id": "streamed"}},
    )  # fmt: skip
    assert "x-nemo-response-cost" not in raw.headers
    usage = [chunk.usage for chunk in raw.parse() if chunk.usage is not None]
    cost = usage[0].model_dump()["cost"]
    admin = AdminClient(gateway.base_url, MASTER_KEY)
    deadline = time.monotonic() + 5
    while True:  # recorded when the stream closes, just after its last byte
        try:
            job = admin.get("/admin/jobs/streamed")
            break
        except AdminError:
            assert time.monotonic() < deadline, "the stream's spend record never came"
            time.sleep(0.05)
    assert job["cost_usd"] == cost and Decimal(cost) > 0
