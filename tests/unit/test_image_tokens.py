"""Image token rules per provider (figures from the providers' own worked examples), the
rule chosen per deployment, and the prompt estimate that uses them."""

from __future__ import annotations

import base64
import io

import orjson
import pytest
from PIL import Image

from nemorouter.types import image_tokens as rules
from nemorouter.types.image_tokens import (
    ANY,
    CLAUDE,
    GEMINI,
    GEMINI_3,
    OPENAI,
    OPENAI_PATCHES,
    claude_tokens,
    gemini_tokens,
    image_tokens,
    openai_patch_tokens,
    openai_tokens,
    rule_for,
)
from nemorouter.types.request import parse_chat_request

A4_150 = (1240, 1754)
A4_300 = (2480, 3508)


def test_gemini_tiles() -> None:
    assert gemini_tokens(384, 384) == 258  # both sides <= 384: one image's worth
    # One 2.x tile, but four 512-px tiles under the 1.5 rule: the larger count is reserved.
    assert gemini_tokens(768, 768) == 4 * 258
    assert gemini_tokens(*A4_150) == 6 * 258  # 2 x 3 tiles
    assert gemini_tokens(*A4_300) == 20 * 258  # 4 x 5 tiles
    # Gemini 1.5's rule (tile = short side / 1.5, clamped 256..768) counts more for
    # middle-sized images: 400x300 -> 256-px tiles, 2 x 2.
    assert gemini_tokens(400, 300) == 4 * 258
    assert image_tokens(GEMINI_3, A4_300) == image_tokens(GEMINI_3, None) == 1120


def test_claude_area_rule_with_its_resize_limits() -> None:
    assert claude_tokens(200, 200) == 54  # Anthropic's examples: 200x200 ~ 54
    assert claude_tokens(1000, 1000) == 1334  # ~1,334
    assert claude_tokens(1092, 1092) == 1590  # ~1,590
    assert claude_tokens(*A4_300) == 1600  # downscaled to the ~1,600 ceiling
    assert claude_tokens(1568, 400) == 837  # long edge at the limit: not scaled


def test_openai_tiles_and_patches() -> None:
    assert openai_tokens(1024, 1024) == 765  # OpenAI's examples
    assert openai_tokens(2048, 4096) == 1105
    assert openai_tokens(*A4_300, low_detail=True) == 85
    assert openai_tokens(768, 2048) == rules.OPENAI_UNKNOWN == 1445  # the most it can be
    assert openai_patch_tokens(320, 320) == 246  # 100 patches x 2.46
    assert openai_patch_tokens(*A4_300) == rules.OPENAI_PATCH_UNKNOWN  # capped at 1,536


def test_unknown_sizes_reserve_a_page_scan_or_the_rule_ceiling() -> None:
    assert image_tokens(GEMINI, None) == 20 * 258
    assert image_tokens(CLAUDE, None) == 1600
    assert image_tokens(OPENAI, None) == 1445
    assert image_tokens(ANY, None) == 20 * 258
    for size in [(100, 100), A4_150, A4_300, (8000, 300)]:
        assert image_tokens(ANY, size) >= max(
            image_tokens(rule, size) for rule in (GEMINI, GEMINI_3, CLAUDE, OPENAI_PATCHES)
        )


@pytest.mark.parametrize(
    ("family", "model", "provider", "rule"),
    [
        ("gemini", "gemini-2.5-flash", "openai-compatible", GEMINI),
        ("gemini", "gemini-3-pro-preview", "vertex", GEMINI_3),
        ("anthropic", "claude-sonnet-4-5", "anthropic-vertex", CLAUDE),
        ("openai", "gpt-4o", "openai", OPENAI),
        ("openai", "gpt-4.1-mini", "openai", OPENAI_PATCHES),
        (None, "my-claude-finetune", "anthropic", CLAUDE),
        (None, "custom", "gemini", GEMINI),
        ("meta", "llama-4-scout-17b-16e-instruct-maas", "vertex", ANY),
        (None, "something", "openai-compatible", ANY),
    ],
)
def test_rule_by_family_name_and_provider(
    family: str | None, model: str, provider: str, rule: str
) -> None:
    assert rule_for(family, model, provider) == rule


def _page(size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("L", size, 255).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_prompt_estimate_per_rule_counts_text_messages_and_each_image() -> None:
    content = [
        {"type": "text", "text": "x" * 300},
        {"type": "image_url", "image_url": {"url": _page(A4_300)}},
        {"type": "image_url", "image_url": {"url": _page(A4_150), "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/scan.png"}},
    ]
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "y" * 30},
            {"role": "user", "content": content},
        ],
    }
    request = parse_chat_request(orjson.dumps(body))
    text = 110 + 2 * 4 + 3  # 330 chars at 3 a token, two messages, the reply's priming
    assert request.prompt_tokens_for(GEMINI) == text + 20 * 258 + 6 * 258 + 20 * 258
    assert request.prompt_tokens_for(OPENAI) == text + 1105 + 85 + 1445
    assert request.prompt_tokens_for(CLAUDE) == text + 1600 + 1600 + 1600
    assert request.prompt_tokens_for(ANY) >= request.prompt_tokens_for(GEMINI)
    assert request.prompt_tokens_estimate == 83 + 3 * 1500  # typical, for window checks
