"""How many prompt tokens an image costs, under each provider's published rule.

Used to reserve budget before a call, so each rule errs high: where a provider documents two
rules (Gemini 2.x and 1.5), the larger count is taken. Sources (quoted with links in
/work/shared/reference/wire-formats.md §6):
- Gemini 2.x: both sides <= 384 px is 258 tokens; larger images are cropped and scaled into
  768x768 tiles of 258 tokens (ai.google.dev/gemini-api/docs/tokens, multimodal section).
  Gemini 1.5: tile side = smaller side / 1.5, clamped to 256..768 (Vertex image requirements).
- Gemini 3: 1,120 tokens an image at the default (high) media resolution (Gemini 3 guide;
  Vertex image page).
- Claude: about width x height / 750, after downscaling so the long edge is <= 1568 px and
  the image <= ~1,600 tokens (docs.anthropic.com build-with-claude/vision).
- OpenAI tile models: detail low = 85; high: fit within 2048x2048, then the shortest side to
  768 (downscale only), 170 per 512-px tile + 85 (platform.openai.com guides/vision).
  Patch models (gpt-4.1-mini/nano, o4-mini): 32x32 patches, at most 1,536, times 1.62 to
  2.46 by model (same page); the largest multiplier is taken.
"""

from __future__ import annotations

import math

GEMINI_TILE_TOKENS = 258
GEMINI_SMALL_SIDE = 384
GEMINI_TILE = 768
GEMINI_3_IMAGE_TOKENS = 1120
CLAUDE_PIXELS_PER_TOKEN = 750
CLAUDE_MAX_EDGE = 1568
CLAUDE_MAX_TOKENS = 1600
OPENAI_LOW = 85
OPENAI_TILE_TOKENS = 170
OPENAI_MAX_PATCHES = 1536
OPENAI_PATCH_MULTIPLIER = 2.46
OPENAI_PATCH_MODELS = ("gpt-4.1-mini", "gpt-4.1-nano", "o4-mini")

# An image whose size is unknown (a remote URL, a format not parsed): what a page scan can
# cost at most. Gemini 2.x has no ceiling under its tile rule: 20 tiles is an A4 page at
# 300 dpi (2480x3508). Claude's and OpenAI's rules are bounded: their ceilings are used.
GEMINI_UNKNOWN = 20 * GEMINI_TILE_TOKENS  # 5,160
CLAUDE_UNKNOWN = CLAUDE_MAX_TOKENS
OPENAI_UNKNOWN = 8 * OPENAI_TILE_TOKENS + OPENAI_LOW  # 768x2048 after scaling: 1,445
OPENAI_PATCH_UNKNOWN = math.ceil(OPENAI_MAX_PATCHES * OPENAI_PATCH_MULTIPLIER)  # 3,779

GEMINI, GEMINI_3, CLAUDE, OPENAI = "gemini", "gemini-3", "claude", "openai"
OPENAI_PATCHES, ANY = "openai-patches", "any"
RULES = (GEMINI, GEMINI_3, CLAUDE, OPENAI, OPENAI_PATCHES, ANY)


def gemini_tokens(width: int, height: int) -> int:
    """Gemini 2.x tiles, or the Gemini 1.5 tiling where that counts more."""
    if width <= GEMINI_SMALL_SIDE and height <= GEMINI_SMALL_SIDE:
        return GEMINI_TILE_TOKENS
    tiles_2x = math.ceil(width / GEMINI_TILE) * math.ceil(height / GEMINI_TILE)
    tile = min(max(min(width, height) / 1.5, 256), GEMINI_TILE)
    tiles_15 = math.ceil(width / tile) * math.ceil(height / tile)
    return max(tiles_2x, tiles_15) * GEMINI_TILE_TOKENS


def claude_tokens(width: int, height: int) -> int:
    scale = min(1.0, CLAUDE_MAX_EDGE / max(width, height))
    tokens = math.ceil(width * scale * height * scale / CLAUDE_PIXELS_PER_TOKEN)
    return min(tokens, CLAUDE_MAX_TOKENS)


def openai_tokens(width: int, height: int, low_detail: bool = False) -> int:
    if low_detail:
        return OPENAI_LOW
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return math.ceil(width / 512) * math.ceil(height / 512) * OPENAI_TILE_TOKENS + OPENAI_LOW


def openai_patch_tokens(width: int, height: int) -> int:
    patches = min(math.ceil(width / 32) * math.ceil(height / 32), OPENAI_MAX_PATCHES)
    return math.ceil(patches * OPENAI_PATCH_MULTIPLIER)


def image_tokens(rule: str, size: tuple[int, int] | None, low_detail: bool = False) -> int:
    """Tokens reserved for one image under `rule` (one of RULES); `size` None = unknown."""
    if rule == GEMINI_3:
        return GEMINI_3_IMAGE_TOKENS
    if size is None:
        return _UNKNOWN[rule]
    width, height = size
    if rule == GEMINI:
        return gemini_tokens(width, height)
    if rule == CLAUDE:
        return claude_tokens(width, height)
    if rule == OPENAI:
        return openai_tokens(width, height, low_detail)
    if rule == OPENAI_PATCHES:
        return openai_patch_tokens(width, height)
    return max(
        gemini_tokens(width, height),
        GEMINI_3_IMAGE_TOKENS,
        claude_tokens(width, height),
        openai_tokens(width, height),
        openai_patch_tokens(width, height),
    )


def rule_for(family: str | None, model: str, provider_type: str) -> str:
    """The image rule of a deployment: by the catalog's model family, else by the model's
    name and the provider's wire format; ANY (the largest of all) when none is known."""
    name = model.lower()
    if family == "gemini" or (family is None and name.startswith("gemini")):
        return GEMINI_3 if name.startswith("gemini-3") else GEMINI
    if family == "anthropic" or (family is None and name.startswith("claude")):
        return CLAUDE
    if name.startswith(OPENAI_PATCH_MODELS):
        return OPENAI_PATCHES
    if family == "openai" or (family is None and name.startswith(("gpt-", "o1", "o3", "o4"))):
        return OPENAI
    if family is None and provider_type == "gemini":
        return GEMINI
    if family is None and provider_type in ("anthropic", "anthropic-vertex"):
        return CLAUDE
    return ANY


_UNKNOWN = {
    GEMINI: GEMINI_UNKNOWN,
    CLAUDE: CLAUDE_UNKNOWN,
    OPENAI: OPENAI_UNKNOWN,
    OPENAI_PATCHES: OPENAI_PATCH_UNKNOWN,
    ANY: max(GEMINI_UNKNOWN, GEMINI_3_IMAGE_TOKENS, CLAUDE_UNKNOWN, OPENAI_PATCH_UNKNOWN),
}
