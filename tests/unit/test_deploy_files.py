"""The Dockerfile and compose.yaml (issue 21, item 13), checked statically: this sandbox has
no Docker daemon. The image installs the package, runs as a non-root user, serves on all
interfaces and checks /health; compose runs several gateways on one Redis and one
PostgreSQL, and the config it mounts loads with the environment compose gives it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from nemorouter.config import load_config

ROOT = Path(__file__).parent.parent.parent
SECRETS = {"NEMOROUTER_MASTER_KEY": "k" * 48, "POSTGRES_PASSWORD": "p" * 32}


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}, from SECRETS."""

    def one(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        if name in SECRETS:
            return SECRETS[name]
        assert default is not None, f"{name} has neither a value nor a default"
        return default

    return re.sub(r"\$\{(?P<name>\w+)(?::(?:\?[^}]*|-(?P<default>[^}]*)))?\}", one, value)


def test_the_image_installs_the_package_and_runs_serve_unprivileged() -> None:
    steps = _instructions()
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    for _, source in (s for s in steps if s[0] == "COPY"):
        for path in source.split()[:-1]:
            assert (ROOT / path).exists(), path  # what the image copies is in the repository
    install = next(arg for kind, arg in steps if kind == "RUN")
    assert "pip install ." in install and "useradd" in install
    user = next(arg for kind, arg in steps if kind == "USER")
    assert user not in ("root", "0")
    assert kinds.index("USER") > kinds.index("RUN")  # installed as root, run as the user
    entrypoint = json.loads(next(arg for kind, arg in steps if kind == "ENTRYPOINT"))
    assert entrypoint[:2] == ["nemorouter", "serve"]
    assert entrypoint[entrypoint.index("--host") + 1] == "0.0.0.0"
    port = entrypoint[entrypoint.index("--port") + 1]
    assert ("EXPOSE", port) in steps
    check = next(arg for kind, arg in steps if kind == "HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/health'" in check
    assert shlex.split(check)[0].startswith("--interval")


def test_compose_runs_several_gateways_on_one_redis_and_one_postgres() -> None:
    services = _compose()["services"]
    assert {"gateway", "redis", "postgres"} <= set(services)
    gateway = services["gateway"]
    assert (ROOT / gateway["build"] / "Dockerfile").is_file()
    assert gateway["deploy"]["replicas"] >= 2
    low, high = map(int, gateway["ports"][0].split(":")[0].split("-"))
    assert high - low + 1 >= gateway["deploy"]["replicas"]  # a host port for each replica
    for service in ("redis", "postgres"):
        assert gateway["depends_on"][service] == {"condition": "service_healthy"}
        assert services[service]["healthcheck"]["test"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_the_mounted_config_loads_with_the_environment_compose_gives_it() -> None:
    compose = _compose()
    gateway = compose["services"]["gateway"]
    source, target, *_ = gateway["volumes"][0].split(":")
    cmd = json.loads(next(arg for kind, arg in _instructions() if kind == "CMD"))
    assert gateway["command"] == cmd and cmd[cmd.index("--config") + 1] == target
    env = {name: _interpolate(str(value)) for name, value in gateway["environment"].items()}
    config = load_config(ROOT / source, env=env)
    # The shared state is the compose services', and secrets come from the environment.
    assert config.settings.redis_url == "redis://redis:6379/0"
    assert config.settings.database_url == (
        f"postgresql://nemorouter:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/nemorouter"
    )
    assert config.settings.master_key == SECRETS["NEMOROUTER_MASTER_KEY"]
    postgres = compose["services"]["postgres"]["environment"]
    assert _interpolate(postgres["POSTGRES_PASSWORD"]) == SECRETS["POSTGRES_PASSWORD"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("nemorouter", "nemorouter")
    simulator = compose["services"]["simulator"]["entrypoint"]
    port = simulator[simulator.index("--port") + 1]
    assert config.providers["sim"].base_url == f"http://simulator:{port}/v1"
