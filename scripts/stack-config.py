#!/usr/bin/env python3
"""stack-config.py — print docker-compose.orchestration.yaml in the form `docker stack deploy` accepts.

    docker stack deploy -c <(scripts/stack-config.py) reynolds
    scripts/stack-config.py -f docker-compose.orchestration.yaml -f docker-compose.swarm.yaml   # with overrides
    scripts/stack-config.py -f ... --endpoint-mode dnsrr   # a host without IPVS (no service virtual IPs)

The compose file stays the single source of truth. It uses Compose Specification keys that a single
host needs (pull_policy, profiles, depends_on conditions, the top-level name) and that the docker CLI's
stack loader rejects. This script lets `docker compose config` resolve the file (interpolation, anchors,
absolute paths) and then removes exactly those keys; on a Swarm they mean nothing: services start in
any order and are restarted until healthy, and images come from a registry.

``--endpoint-mode dnsrr`` puts every service (those of any override too) in DNS round-robin mode and
publishes its ports in host mode, for kernels without IPVS, where Swarm's virtual IPs and ingress do not
route; ``vip`` (the default) leaves the file's own choice, which is dnsrr for the agent pools.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Compose-only service keys: rejected by the stack loader, or meaningless on a Swarm.
COMPOSE_ONLY = {"pull_policy", "profiles", "build", "depends_on", "restart", "container_name"}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _unnamed(items: dict | None) -> dict:
    """Top-level networks/volumes/secrets without the project prefix `compose config` wrote into their names."""
    return {key: {k: v for k, v in spec.items() if k != "name"} for key, spec in (items or {}).items()}


def stack_service(service: dict, endpoint_mode: str = "vip") -> dict:
    service = {k: v for k, v in service.items() if k not in COMPOSE_ONLY}
    for port in service.get("ports", []):
        port.pop("host_ip", None)  # the ingress publishes on every node: restrict access with a firewall
        port["published"] = int(port["published"])
        if endpoint_mode == "dnsrr":
            port["mode"] = "host"  # the ingress needs a virtual IP; host mode publishes on the task's node
    if endpoint_mode == "dnsrr":
        service.setdefault("deploy", {})["endpoint_mode"] = "dnsrr"
    for volume in service.get("volumes", []):
        volume.pop("bind", None)  # create_host_path is a Compose extension
        if "size" in volume.get("tmpfs", {}):
            volume["tmpfs"]["size"] = int(volume["tmpfs"]["size"])
    limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
    if "cpus" in limits:
        limits["cpus"] = str(limits["cpus"])
    networks = service.pop("networks", None)
    service = _without_nulls(service)
    if networks:  # `{"reynolds": null}` is how a plain membership resolves: keep it (null is valid there)
        service["networks"] = {name: _without_nulls(spec) or None for name, spec in networks.items()}
    return service


def stack_config(compose: dict, endpoint_mode: str = "vip") -> dict:
    """The stack form of a resolved compose project (the JSON of `docker compose config --format json`)."""
    return {
        "version": "3.9",  # the stack loader wants a schema version
        "services": {
            name: stack_service(service, endpoint_mode)
            for name, service in compose["services"].items()
            if not service.get("profiles")  # build-only services (the base image) are not deployed
        },
        "networks": {
            k: {**_without_nulls(v), "driver": "overlay"} for k, v in _unnamed(compose.get("networks")).items()
        },
        "volumes": _unnamed(compose.get("volumes")),
        "secrets": _unnamed(compose.get("secrets")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Print the orchestration compose file in docker stack form.")
    parser.add_argument(
        "-f", "--file", action="append", help="compose file; repeat for overrides (default: the orchestration file)"
    )
    parser.add_argument(
        "--endpoint-mode",
        choices=["vip", "dnsrr"],
        default="vip",
        help="dnsrr: every service in DNS round-robin mode with host-mode ports (hosts without IPVS)",
    )
    args = parser.parse_args()
    files = [x for f in args.file or [str(REPO / "docker-compose.orchestration.yaml")] for x in ("-f", f)]
    resolved = subprocess.run(
        ["docker", "compose", *files, "config", "--format", "json"], check=True, capture_output=True, text=True
    )
    json.dump(stack_config(json.loads(resolved.stdout), args.endpoint_mode), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
