"""A simulated provider's own rate-limit window (its `rpm` quota, with OpenAI's
x-ratelimit headers) and its `/_sim/*` control API (faults, reset, requests, config)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_answers import PromptCounting
from nemorouter.testing.sim_types import Fault

if TYPE_CHECKING:
    from nemorouter.testing.simulated_provider import SimulatedProvider

_decode = msgspec.json.decode
_COUNTING = ("prompt_token_factor", "system_prompt_tokens", "image_tokens")


def take_quota(sim: SimulatedProvider, rpm: int) -> tuple[bool, bytes]:
    """Sliding window of `window_s` (60 s) counted at arrival; refused requests do not
    count. Returns (rejected, x-ratelimit headers)."""
    now = time.monotonic()
    window = sim.rpm_window
    span = sim.window_s
    while window and window[0] <= now - span:
        window.popleft()
    rejected = len(window) >= rpm
    if rejected:
        sim.throttled += 1
    else:
        window.append(now)
    reset = window[0] + span - now if window else 0.0
    headers = (
        f"x-ratelimit-limit-requests: {rpm}\r\n"
        f"x-ratelimit-remaining-requests: {max(0, rpm - len(window))}\r\n"
        f"x-ratelimit-reset-requests: {http.duration(reset)}\r\n"
    )
    if rejected:
        headers += f"retry-after: {max(1, math.ceil(reset))}\r\n"
    return rejected, headers.encode()


def control(sim: SimulatedProvider, method: bytes, path: bytes, body: bytes) -> bytes:
    """The `/_sim/*` control API: inject faults, reset, list requests, change the config."""
    try:
        data = _decode(body) if body else {}
        if path == b"/_sim/faults" and method == b"POST":
            sim.inject(Fault.from_dict(data), int(data.get("times", 1)))
            return http.json_response(200, {"ok": True, "queued": sim.pending_faults})
        if path == b"/_sim/reset" and method == b"POST":
            sim.clear()
            return http.json_response(200, {"ok": True})
        if path == b"/_sim/requests" and method == b"GET":
            return http.json_response(200, [r.summary() for r in sim.requests])
        if path == b"/_sim/config" and method in (b"PUT", b"POST", b"GET"):
            if "latency_ms" in data:
                sim.latency_ms = float(data["latency_ms"] or 0.0)
            if "rpm" in data:
                sim.rpm = None if data["rpm"] is None else int(data["rpm"])
            if "window_s" in data:
                sim.window_s = float(data["window_s"])
            counting = {k: data[k] for k in _COUNTING if k in data}
            if counting:
                current = sim.counting
                sim.counting = PromptCounting(
                    float(counting.get("prompt_token_factor", current.factor)),
                    int(counting.get("system_prompt_tokens", current.system_tokens)),
                    int(counting.get("image_tokens", current.image_tokens)),
                )
            state = {"latency_ms": sim.latency_ms, "rpm": sim.rpm}
            state |= {"window_s": sim.window_s, "throttled": sim.throttled}
            return http.json_response(200, state)
    except (msgspec.DecodeError, ValueError, TypeError, AttributeError) as exc:
        return http.json_response(
            400, http.error_body(str(exc), "invalid_request_error", None, None)
        )
    return http.invalid_url(405, method, path)
