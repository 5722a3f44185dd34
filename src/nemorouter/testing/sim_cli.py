"""`nemorouter simulate` / `python -m nemorouter.testing.simulated_provider`: run one
simulated OpenAI-compatible provider in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from nemorouter.runtime import keep_freed_memory
from nemorouter.testing.sim_answers import IMAGE_TOKENS
from nemorouter.testing.simulated_provider import SimulatedProvider

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio works too
    uvloop = None  # type: ignore[assignment]


def main(argv: list[str] | None = None, prog: str = "nemorouter simulate") -> int:
    """Run a simulated provider until SIGINT/SIGTERM (used by `nemorouter` CLI and `-m`)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="A simulated OpenAI-compatible provider (for tests, demos, benchmarks).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=9001, help="port to listen on; 0 picks a free one")
    p.add_argument(
        "--latency-ms", type=float, default=0.0, help="time to first byte of every answer"
    )
    p.add_argument("--rpm", type=int, default=None, help="own requests-per-minute quota")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    p.add_argument(
        "--prompt-token-factor",
        type=float,
        default=1.0,
        help="report this many times the prompt tokens the text and images suggest",
    )
    p.add_argument(
        "--system-prompt-tokens",
        type=int,
        default=0,
        help="prompt tokens added to every call's reported usage (a provider's own overhead)",
    )
    p.add_argument(
        "--image-tokens",
        type=int,
        default=IMAGE_TOKENS,
        help=f"prompt tokens reported per image (default {IMAGE_TOKENS})",
    )
    p.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="do not keep request bodies (long benchmark runs)",
    )
    args = p.parse_args(argv)
    keep_freed_memory(trim_threshold_mb=128)
    sim = SimulatedProvider(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        rpm=args.rpm,
        api_key=args.api_key,
        record=args.record,
        prompt_token_factor=args.prompt_token_factor,
        system_prompt_tokens=args.system_prompt_tokens,
        image_tokens=args.image_tokens,
    )

    async def serve() -> None:
        await sim.start_async()
        print(f"simulated provider listening on {sim.base_url}", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # not possible off the main thread or on Windows: then Ctrl-C still works
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stopped.set)
        try:
            await stopped.wait()
        finally:
            await sim.stop_async()

    factory = uvloop.new_event_loop if uvloop is not None else None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"simulated provider failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
