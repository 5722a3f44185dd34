"""What a newcomer types first: --version, -h, a typo in a flag value, a missing or broken
config, a busy port (issue 21, item 7). Through the real command, as a subprocess."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from nemorouter.testing.processes import free_port

from .test_cli import run_cli

MINIMAL = (
    "settings: {master_key: sk-test-master-key-0123456789, database_url: 'sqlite:///%s'}\n"
    "providers: {p: {type: openai-compatible, base_url: 'http://127.0.0.1:9/v1', api_key: none}}\n"
    "deployments: [{id: a, model: gpt-4o-mini, provider: p}]\n"
)


def test_version_and_short_help() -> None:
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("nemorouter ")
    for args in (("-h",), ("serve", "-h"), ("batch", "run", "-h"), ("keys", "create", "-h")):
        shown = run_cli(*args)
        assert shown.returncode == 0, args
        assert "Usage: nemorouter" in shown.stdout
        assert "<bool>" not in shown.stdout  # flags read as --x / --no-x, not as a type


def test_every_option_says_what_it_is_for() -> None:
    for args in (("serve",), ("batch", "run"), ("keys", "create"), ("teams", "create"), ("spend",)):
        shown = run_cli(*args, "-h").stdout
        options = shown.split("Options:", 1)[1]
        for line in options.splitlines():
            # an option line whose text ends at its metavar has no help
            if line.startswith("  -") and line.rstrip().endswith(">"):
                following = options.split(line, 1)[1].splitlines()[1:2]
                assert following and following[0].startswith(" " * 10), (args, line)


def test_simulate_help_is_titled_as_the_command_typed() -> None:
    shown = run_cli("simulate", "-h")
    assert shown.returncode == 0
    assert shown.stdout.startswith("usage: nemorouter simulate")


def test_an_invalid_choice_lists_the_valid_ones(tmp_path: Path) -> None:
    result = run_cli("serve", "--log-level", "loud")
    assert result.returncode == 2
    for level in ("debug", "info", "warning", "error"):
        assert level in result.stderr


def test_a_yaml_mistake_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("settings:\n  master_key: [sk-unclosed\n")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}, line " in result.stderr
    assert "<unicode string>" not in result.stderr


def test_a_missing_config_points_at_the_example(tmp_path: Path) -> None:
    missing = tmp_path / "nemorouter.yaml"
    result = run_cli("serve", "--config", str(missing))
    assert result.returncode == 2
    assert "nemorouter config example" in result.stderr
    example = run_cli("config", "example")
    assert example.returncode == 0
    document = yaml.safe_load(example.stdout)
    assert {"settings", "providers", "deployments"} <= set(document)


def test_a_busy_port_fails_before_the_gateway_says_it_is_ready(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(MINIMAL % (tmp_path / "spend.db"))
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_cli("serve", "--config", str(config), "--port", str(port))
    assert result.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "gateway ready" not in result.stderr
