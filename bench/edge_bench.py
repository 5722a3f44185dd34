"""Memory one unauthenticated request can make the gateway hold.

Starts `nemorouter serve` (SQLite store), reads the server's resident memory (VmRSS) and
peak (VmHWM) from /proc, then sends each probe and reads them again:
- login: `POST /ui/login` with a 400 MiB form body (no key needed to send it),
- admin: `POST /admin/keys` with a 400 MiB body (master key),
- head: a request whose header is 32 MiB long.
Before the bounds these were read whole (login: RSS 887 MiB); now each is refused early
(413 for bodies, 431 for the head) and memory stays where it was.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import serve_process

MASTER_KEY = "sk-bench-master-key"
CHUNK = b"k" * (1 << 20)


def _memory_mib(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _send(port: int, head: bytes, body_mib: int) -> tuple[str, float]:
    """Send a head and `body_mib` MiB of body; return the status line and seconds taken."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        try:
            sock.sendall(head)
            for _ in range(body_mib):
                sock.sendall(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway answered and closed before everything was sent
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
        except TimeoutError:
            answer = b"(no answer in 120 s)"
    status = answer.split(b"\r\n", 1)[0].decode("latin-1") or "(connection closed)"
    return status, time.monotonic() - started


def _probes(mib: int, head_mib: int) -> list[tuple[str, bytes, int]]:
    size = mib << 20
    login = (
        "POST /ui/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded"
        f"\r\nContent-Length: {size + 4}\r\n\r\nkey="
    ).encode()
    admin = (
        f"POST /admin/keys HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    head = b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Big: "
    return [
        (f"login, {mib} MiB form body", login, mib),
        (f"admin POST, {mib} MiB body", admin, mib),
        (f"header of {head_mib} MiB", head, head_mib),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=400, help="body size of the body probes")
    parser.add_argument("--head-mib", type=int, default=32, help="size of the header probe")
    args = parser.parse_args()
    with SimulatedProvider() as sim, tempfile.TemporaryDirectory() as tmp:
        config = {
            "settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp}/edge.db"},
            "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
            "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
        }
        print("| probe | answer | seconds | RSS before | RSS after | peak RSS after |")
        print("|---|---|---:|---:|---:|---:|")
        for name, head, mib in _probes(args.mib, args.head_mib):
            # A fresh server per probe: each peak is that probe's own.
            with serve_process(config, Path(tmp), log_level="error") as (process, url):
                port = int(url.rsplit(":", 1)[1])
                before, _ = _memory_mib(process.pid)
                status, seconds = _send(port, head, mib)
                time.sleep(0.5)  # let the server finish with whatever it read
                after, peak = _memory_mib(process.pid)
            print(f"| {name} | {status} | {seconds:.2f} | {before:.0f} MiB | {after:.0f} MiB | {peak:.0f} MiB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
