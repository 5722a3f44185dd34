"""Run the gateway under uvicorn: in the foreground (`nemorouter serve`) or on a thread."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path
from types import TracebackType

import uvicorn

from nemorouter.config import Config, load_config
from nemorouter.gateway.app import create_app
from nemorouter.gateway.http_protocol import BoundedHttpToolsProtocol

CONFIG_ENV = "NEMOROUTER_CONFIG"


def uvicorn_config(
    app: object,
    host: str,
    port: int,
    log_level: str = "warning",
    graceful_s: float | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        lifespan="on",
        access_log=False,  # one log line per request would cost more than routing it
        log_level=log_level,
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=graceful_s,
    )


def graceful_shutdown_s(config: Config) -> float:
    """How long SIGTERM waits for requests in flight: their whole deadline, so an answer
    the provider is producing (and will bill) still reaches its client. Past it, uvicorn
    cancels them and shutdown goes on (spend records still waiting are journalled), so a
    request stuck waiting on a dead store can never hold the exit up forever."""
    return config.settings.deadline_s


class ListenError(OSError):
    """The gateway's address cannot be listened on (in use, not ours, no permission)."""


def listen_socket(host: str, port: int) -> socket.socket:
    """The bound socket, before anything starts: a busy port fails here, not after the
    gateway has connected its stores and logged that it is ready."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def serve(config: Config, host: str, port: int, log_level: str = "info") -> None:
    """Serve in the foreground until SIGINT/SIGTERM (one process)."""
    sock = listen_socket(host, port)
    app = create_app(config)
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level, graceful_shutdown_s(config)))
    server.run(sockets=[sock])


def serve_workers(
    config_path: Path, config: Config, host: str, port: int, workers: int, log_level: str
) -> None:
    """Several worker processes; each loads the config itself (see `app_from_env`)."""
    os.environ[CONFIG_ENV] = str(config_path.resolve())
    uvicorn.run(
        "nemorouter.serving:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        access_log=False,
        log_level=log_level,
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=graceful_shutdown_s(config),
    )


def app_from_env() -> object:
    return create_app(load_config(os.environ[CONFIG_ENV]))


class BackgroundGateway:
    """A gateway on a free loopback port, served from a thread (tests, demo, benchmark).

    with BackgroundGateway(config) as gw:
        openai.OpenAI(base_url=gw.base_url, api_key=...)
    """

    def __init__(self, config: Config, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.app = create_app(config)
        self._server = uvicorn.Server(uvicorn_config(self.app, self.host, self.port))
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _run(self) -> None:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 10.0) -> BackgroundGateway:
        self._thread.start()
        pause = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("gateway thread exited during start-up")
            pause.wait(0.01)
        raise TimeoutError("gateway did not start in time")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
