"""Setting the number of replicas of an agent pool through the Docker API.

A pool runs as one service of the deployment: pool ``devops`` is service ``devops-agent``, and so on.

- On **Docker Swarm** (``docker stack deploy``) the service's replica count is updated and Swarm does
  the rest.
- On **Docker Compose** there is no such API: Compose itself keeps no state besides container labels
  (``com.docker.compose.project`` / ``.service`` / ``.container-number``). Scaling up therefore creates
  containers exactly like an existing replica (same image, configuration, labels, mounts and networks,
  the next container number, name ``<project>-<service>-<n>``); scaling down stops the highest-numbered
  replicas gracefully and removes them. A later ``docker compose up`` sees them as its own.

New replicas register with Reynolds by themselves; removed ones drop out of ``list_agents`` when their
heartbeats stop. Everything here is synchronous (docker SDK); callers in async code run it in a thread.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import docker
from docker.errors import DockerException
from docker.errors import NotFound as DockerNotFound
from pydantic import BaseModel, Field

from reynolds.errors import InvalidRequest, NotFound, ReynoldsError, ServiceUnavailable

# pool -> compose/stack service. workbench exists in the CI deployment only.
POOL_SERVICES: dict[str, str] = {
    "devops": "devops-agent",
    "platform": "platform-agent",
    "code": "code-agent",
    "workbench": "workbench-agent",
}
MAX_REPLICAS = 50
DEFAULT_STOP_TIMEOUT_S = 30

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
STACK = "com.docker.stack.namespace"


class ScaleResult(BaseModel):
    """What changed: replica counts before and after, and the containers added or removed (Compose)."""

    pool: str
    service: str
    backend: Literal["compose", "swarm"]
    project: str = Field(description="compose project or swarm stack name")
    previous: int = Field(description="replicas before the change")
    replicas: int = Field(description="replicas asked for (and, on Compose, now running)")
    added: list[str] = Field(default_factory=list, description="containers created or started")
    removed: list[str] = Field(default_factory=list, description="containers stopped and removed")
    message: str


def service_for(pool: str) -> str:
    """The deployment service running ``pool``; raises NotFound for a pool that cannot be scaled."""
    try:
        return POOL_SERVICES[pool]
    except KeyError:
        known = ", ".join(sorted(POOL_SERVICES))
        raise NotFound(f"unknown pool {pool!r}: pools that can be scaled are {known}") from None


def scale_pool(pool: str, replicas: int, project: str | None = None) -> ScaleResult:
    """Set the replica count of ``pool`` to ``replicas`` (0..50) in compose project / stack ``project``.

    Without ``project``: ``REYNOLDS_COMPOSE_PROJECT``, else the project of the container this runs in,
    else the only project that runs the pool's service."""
    service = service_for(pool)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidRequest(f"replicas must be a whole number from 0 to {MAX_REPLICAS}, got {replicas!r}")
    client = _connect()
    try:
        swarm, project = _locate(client, service, project)
        if swarm is not None:
            return _scale_swarm(swarm, pool, service, replicas)
        return _scale_compose(client, pool, service, replicas, project)
    except DockerException as err:
        raise ServiceUnavailable(f"Docker refused to scale {service}: {_explain(err)}") from err
    finally:
        client.close()


def check_scalable(pool: str, project: str | None = None) -> None:
    """Raise what ``scale_pool`` would raise before it changes anything: an unknown pool, no Docker, no
    deployment running the pool's service."""
    service = service_for(pool)
    client = _connect()
    try:
        _locate(client, service, project)
    except DockerException as err:
        raise ServiceUnavailable(f"Docker cannot see {service}: {_explain(err)}") from err
    finally:
        client.close()


def _locate(client: docker.DockerClient, service: str, project: str | None) -> tuple[Any | None, str]:
    """(the Swarm service, or None on Compose; the stack or compose project) that runs ``service``."""
    project = project or os.environ.get("REYNOLDS_COMPOSE_PROJECT") or None
    swarm = _swarm_service(client, service, project)
    if swarm is not None:
        return swarm, project or ""
    return None, project or _find_project(client, service)


# ---------------------------------------------------------------------------------------------- Docker


def _connect() -> docker.DockerClient:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except DockerException as err:
        raise ServiceUnavailable(
            f"Docker is not reachable at {where}: {_explain(err)}. Scaling needs the Docker API: mount "
            "/var/run/docker.sock into the Reynolds container (or set DOCKER_HOST) and give its user the "
            "socket's group (DOCKER_GID)."
        ) from err
    return client


def _explain(err: DockerException) -> str:
    text = str(err)
    return text if len(text) < 300 else text[:300] + "..."


def _find_project(client: docker.DockerClient, service: str) -> str:
    """Our own container's project, else the only project running ``service``."""
    try:
        own = client.containers.get(socket.gethostname())
        if own.labels.get(PROJECT):
            return own.labels[PROJECT]
    except DockerNotFound:
        pass  # not running in a container of this Docker engine (e.g. the CLI on the host)
    found = {c.labels[PROJECT] for c in client.containers.list(all=True, filters={"label": f"{SERVICE}={service}"})}
    if len(found) == 1:
        return found.pop()
    if not found:
        raise NotFound(f"no compose project runs service {service}: is the deployment up?")
    raise InvalidRequest(
        f"several compose projects run {service} ({', '.join(sorted(found))}): set REYNOLDS_COMPOSE_PROJECT"
    )


# ---------------------------------------------------------------------------------------------- Swarm


def _swarm_service(client: docker.DockerClient, service: str, stack: str | None) -> Any | None:
    if client.info().get("Swarm", {}).get("LocalNodeState") != "active":
        return None
    if not client.info().get("Swarm", {}).get("ControlAvailable"):
        raise InvalidRequest("this Docker engine is a Swarm worker: scaling needs a manager node")
    filters = {"label": f"{STACK}={stack}"} if stack else {}
    matches = [s for s in client.services.list(filters=filters) if s.name.split("_", 1)[-1] == service]
    if len(matches) > 1:
        stacks = ", ".join(sorted(s.attrs["Spec"]["Labels"].get(STACK, "?") for s in matches))
        raise InvalidRequest(f"several stacks run {service} ({stacks}): set REYNOLDS_COMPOSE_PROJECT")
    return matches[0] if matches else None


def _scale_swarm(svc: Any, pool: str, service: str, replicas: int) -> ScaleResult:
    mode = svc.attrs["Spec"]["Mode"]
    if "Replicated" not in mode:
        raise InvalidRequest(f"swarm service {svc.name} is not replicated: it cannot be scaled")
    previous = int(mode["Replicated"].get("Replicas", 0))
    if previous != replicas:
        svc.scale(replicas)
    stack = svc.attrs["Spec"].get("Labels", {}).get(STACK, svc.name.rsplit("_", 1)[0])
    return ScaleResult(
        pool=pool,
        service=service,
        backend="swarm",
        project=stack,
        previous=previous,
        replicas=replicas,
        message=f"swarm service {svc.name}: {previous} -> {replicas} replicas",
    )


# ---------------------------------------------------------------------------------------------- Compose


def _scale_compose(client: docker.DockerClient, pool: str, service: str, replicas: int, project: str) -> ScaleResult:
    containers = [
        c
        for c in client.containers.list(all=True, filters={"label": [f"{PROJECT}={project}", f"{SERVICE}={service}"]})
        if c.labels.get(ONEOFF, "False") != "True"
    ]
    if not containers:
        raise NotFound(
            f"compose project {project!r} has no container of service {service}: start it once with "
            "`docker compose up` so there is a replica to copy"
        )
    containers.sort(key=_number)
    previous = len(containers)
    added: list[str] = []
    removed: list[str] = []

    if replicas < previous:
        doomed, containers = containers[replicas:], containers[:replicas]
        # Stop in parallel: each stop may wait for a drain of up to its stop timeout.
        with ThreadPoolExecutor(max_workers=min(8, len(doomed))) as pool_exec:
            removed = list(pool_exec.map(_stop_and_remove, doomed))
    elif replicas > previous:
        template = next((c for c in containers if c.status == "running"), containers[0])
        next_number = _number(containers[-1]) + 1
        for number in range(next_number, next_number + replicas - previous):
            added.append(_clone(client, template, project, service, number))

    # Like `docker compose up --scale`: replicas that exist but are stopped are started again.
    for c in containers:
        c.reload()
        if c.status not in ("running", "restarting"):
            c.start()
            added.append(c.name)

    return ScaleResult(
        pool=pool,
        service=service,
        backend="compose",
        project=project,
        previous=previous,
        replicas=replicas,
        added=added,
        removed=removed,
        message=f"compose service {project}/{service}: {previous} -> {replicas} replicas",
    )


def _number(container: Any) -> int:
    try:
        return int(container.labels.get(NUMBER, "0"))
    except ValueError:
        return 0


def _stop_and_remove(container: Any) -> str:
    timeout = container.attrs["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT_S
    container.stop(timeout=timeout)
    container.remove()
    return container.name


def _clone(client: docker.DockerClient, template: Any, project: str, service: str, number: int) -> str:
    """Create and start replica ``number`` of ``service`` configured exactly like ``template``."""
    attrs = template.attrs
    config = {k: v for k, v in attrs["Config"].items() if k not in ("Hostname", "Image")}
    # The template's image id, not its tag: the copy runs the very same image even if the tag moved.
    config["Image"] = attrs["Image"]
    config["Labels"] = {**attrs["Config"].get("Labels", {}), NUMBER: str(number)}
    config["HostConfig"] = attrs["HostConfig"]
    networks = attrs["NetworkSettings"]["Networks"]
    primary = attrs["HostConfig"].get("NetworkMode")
    if primary not in networks:
        primary = next(iter(networks))
    # Only the service name as alias: that is the DNS name Reynolds' peers and Prometheus resolve.
    config["NetworkingConfig"] = {"EndpointsConfig": {primary: {"Aliases": [service]}}}

    name = f"{project}-{service}-{number}"
    created = client.api.create_container_from_config(config, name=name)
    try:
        for network in networks:
            if network != primary:
                client.api.connect_container_to_network(created["Id"], network, aliases=[service])
        client.api.start(created["Id"])
    except DockerException as err:
        client.api.remove_container(created["Id"], force=True)
        raise ReynoldsError(f"new replica {name} did not start: {_explain(err)}") from err
    return name
