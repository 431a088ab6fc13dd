"""scripts/stack-config.py: the compose project in the form `docker stack deploy` accepts, with the
endpoint mode for hosts without IPVS. Works on the resolved form (`docker compose config --format json`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack_config", REPO / "scripts/stack-config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolved() -> dict[str, Any]:
    """A small project as `docker compose config --format json` prints it."""
    return {
        "name": "reynolds",
        "services": {
            "agent-base": {"profiles": ["build"], "image": "reynolds/agent-base"},
            "reynolds": {
                "image": "reynolds/reynolds",
                "pull_policy": "never",
                "depends_on": {"postgres": {"condition": "service_healthy"}},
                "networks": {"reynolds": None},
                "ports": [{"host_ip": "127.0.0.1", "target": 8080, "published": "8080", "protocol": "tcp"}],
                "deploy": {"resources": {"limits": {"cpus": 1.0}}},
            },
            "postgres": {"image": "postgres:16", "networks": {"reynolds": {"aliases": ["db"]}}},
        },
        "networks": {"reynolds": {"name": "reynolds_reynolds"}},
        "secrets": {"agent_key": {"name": "reynolds_agent_key", "file": "/s/agent_key"}},
    }


def test_compose_only_keys_go_and_services_stay_on_their_network(stack_config: ModuleType) -> None:
    stack = stack_config.stack_config(resolved())
    assert set(stack["services"]) == {"reynolds", "postgres"}  # the build-only service is not deployed
    reynolds = stack["services"]["reynolds"]
    assert not {"pull_policy", "depends_on"} & set(reynolds)
    # a plain membership resolves to null; dropping it would put the service on the stack's default network
    assert reynolds["networks"] == {"reynolds": None}
    assert stack["services"]["postgres"]["networks"] == {"reynolds": {"aliases": ["db"]}}
    assert stack["networks"] == {"reynolds": {"driver": "overlay"}}
    assert stack["secrets"] == {"agent_key": {"file": "/s/agent_key"}}
    assert reynolds["ports"] == [{"target": 8080, "published": 8080, "protocol": "tcp"}]
    assert reynolds["deploy"]["resources"]["limits"]["cpus"] == "1.0"
    assert "endpoint_mode" not in reynolds["deploy"]  # vip: the file's own choice


def test_dnsrr_puts_every_service_in_round_robin_with_host_ports(stack_config: ModuleType) -> None:
    stack = stack_config.stack_config(resolved(), "dnsrr")
    for service in stack["services"].values():
        assert service["deploy"]["endpoint_mode"] == "dnsrr"
    assert stack["services"]["reynolds"]["ports"][0]["mode"] == "host"


class ComposeLoader(yaml.SafeLoader):
    """Safe YAML that also reads Compose's `!reset` merge tag (as null)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def load(name: str) -> dict[str, Any]:
    return yaml.load((REPO / name).read_text(), Loader=ComposeLoader)  # a SafeLoader: no arbitrary objects


def test_the_swarm_override_pins_the_socket_holders_and_the_databases_to_managers() -> None:
    compose = load("docker-compose.orchestration.yaml")
    swarm = load("docker-compose.swarm.yaml")["services"]
    with_socket = {
        name
        for name, service in compose["services"].items()
        if any(str(v).startswith("/var/run/docker.sock:") for v in service.get("volumes", []))
    }
    assert with_socket == {"reynolds", "docker-agent"}
    for name in with_socket | {"postgres", "redis"}:
        assert "node.role == manager" in swarm[name]["deploy"]["placement"]["constraints"], name
    assert set(swarm) <= set(compose["services"])  # an override only: it adds no service


def test_the_managed_state_override_gives_urls_and_leaves_the_local_databases_out() -> None:
    managed = load("docker-compose.managed-state.yaml")["services"]
    env = managed["reynolds"]["environment"]
    assert env["REYNOLDS_DATABASE_URL"].startswith("${REYNOLDS_DATABASE_URL:?")
    assert env["REYNOLDS_REDIS_URL"].startswith("${REYNOLDS_REDIS_URL:?")
    assert managed["postgres"]["profiles"] and managed["redis"]["profiles"]  # stack-config.py drops those
