"""scale_pool's input checks and its error when Docker cannot be reached. Scaling itself runs against a
real Docker engine in tests/e2e/test_system.py."""

from __future__ import annotations

import pytest

from reynolds.errors import InvalidRequest, NotFound, ServiceUnavailable
from reynolds.scaling import MAX_REPLICAS, POOL_SERVICES, scale_pool, service_for


def test_pools_map_to_compose_services() -> None:
    assert service_for("devops") == "devops-agent"
    assert service_for("platform") == "platform-agent"
    assert service_for("code") == "code-agent"
    assert set(POOL_SERVICES) >= {"devops", "platform", "code"}


def test_unknown_pool_names_the_pools_that_exist() -> None:
    with pytest.raises(NotFound, match=r"unknown pool 'gpu'.*code, devops, platform"):
        scale_pool("gpu", 2)


@pytest.mark.parametrize("replicas", [-1, MAX_REPLICAS + 1, 2.5, True])
def test_replicas_outside_the_range_are_refused(replicas: object) -> None:
    with pytest.raises(InvalidRequest, match=f"whole number from 0 to {MAX_REPLICAS}"):
        scale_pool("devops", replicas)  # type: ignore[arg-type]


def test_unreachable_docker_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    socket_path = tmp_path / "no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    with pytest.raises(ServiceUnavailable, match=rf"Docker is not reachable at unix://{socket_path}.*docker.sock"):
        scale_pool("devops", 2)
