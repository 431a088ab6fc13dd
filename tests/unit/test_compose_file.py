"""The deployment files say what docs/deploy.md promises: replicas, healthchecks and their use in depends_on,
limits, volumes, secrets, one network, the Docker socket only where it is needed, nothing pulled for images
built here, and a CI override that swaps in locally built services. `docker compose config` itself runs
in the e2e stage (.ci/e2e.sh), where a Compose binary is installed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from reynolds.auth import PoolTokens
from reynolds.config import UNSET_SECRET

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.orchestration.yaml"
CI = REPO / "docker-compose.ci.yaml"
SOCKET = "/var/run/docker.sock"
OUR_IMAGES = {"reynolds", "devops-agent", "platform-agent", "code-agent", "docker-agent"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load(CI.read_text())


def running(compose: dict) -> dict[str, dict]:
    """Services that run on a plain `up` (the build-only base image has a profile)."""
    return {name: s for name, s in compose["services"].items() if not s.get("profiles")}


def mounts(service: dict) -> list[dict]:
    """Volumes in long form, whichever syntax the file uses."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append(v)
            continue
        parts = re.split(r":(?![^{]*})", v)  # not the ":-" inside a ${VAR:-default}
        out.append({"source": parts[0], "target": parts[1], "read_only": parts[2:] == ["ro"]})
    return out


def test_no_obsolete_version_key_and_a_project_name(compose: dict) -> None:
    assert "version" not in compose
    assert compose["name"] == "reynolds"


def test_the_system_and_its_replicas(compose: dict) -> None:
    services = running(compose)
    assert set(services) == {
        "reynolds",
        "devops-agent",
        "platform-agent",
        "code-agent",
        "docker-agent",
        "redis",
        "postgres",
        "prometheus",
        "grafana",
    }
    replicas = {name: s.get("deploy", {}).get("replicas", 1) for name, s in services.items()}
    assert replicas["devops-agent"] == 3
    assert replicas["platform-agent"] == 2
    assert replicas["code-agent"] == 3
    assert replicas["docker-agent"] == 1
    assert replicas["reynolds"] == 1


def test_every_service_has_a_healthcheck_and_dependencies_wait_for_it(compose: dict) -> None:
    services = running(compose)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, cond in service.get("depends_on", {}).items():
            if dep in services:
                assert cond["condition"] == "service_healthy", f"{name} -> {dep}"
    assert set(services["reynolds"]["depends_on"]) >= {"postgres", "redis"}
    for agent in ("devops-agent", "platform-agent", "code-agent", "docker-agent"):
        assert services[agent]["depends_on"]["reynolds"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_our_images_probe_health_with_python_urllib(compose: dict) -> None:
    for name in OUR_IMAGES:
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert "urllib.request.urlopen('http://127.0.0.1:8080/" in test[3], name
    assert "/ready'" in compose["services"]["reynolds"]["healthcheck"]["test"][3]


def test_every_service_has_resource_limits(compose: dict) -> None:
    for name, service in running(compose).items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("cpus") and limits.get("memory"), f"{name} has no cpu/memory limit"


def test_one_network_for_everything(compose: dict) -> None:
    assert list(compose["networks"]) == ["reynolds"]
    for name, service in running(compose).items():
        assert service.get("networks") == ["reynolds"], name


def test_built_images_are_never_pulled_and_the_base_is_built_first(compose: dict) -> None:
    base = compose["services"]["agent-base"]
    assert base["profiles"] == ["build"]
    assert base["build"]["args"]["PYTHON_IMAGE"] == "${PYTHON_IMAGE:-python:3.11-slim}"
    for name, service in compose["services"].items():
        if "build" in service:
            assert service["pull_policy"] == "never", name
            assert service["build"]["context"] == ".", name
            assert (REPO / service["build"]["dockerfile"]).is_file(), name
        if name in OUR_IMAGES:
            assert service["build"]["args"]["BASE_IMAGE"] == base["image"], name
            assert service["depends_on"]["agent-base"] == {"condition": "service_started", "required": False}
            dockerfile = (REPO / service["build"]["dockerfile"]).read_text()
            assert re.search(r"^ARG BASE_IMAGE=reynolds/agent-base:latest\nFROM \$\{BASE_IMAGE\}$", dockerfile, re.M)


def test_dockerfiles_run_as_non_root_and_never_pull_a_frontend() -> None:
    base = (REPO / "agents/base/Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim\nFROM \$\{PYTHON_IMAGE\}$", base, re.M)
    assert "pip install --no-cache-dir ." in base
    assert re.findall(r"^USER (\S+)", base, re.M)[-1] == "reynolds"
    for path in [*REPO.glob("agents/*/Dockerfile"), REPO / "reynolds/Dockerfile", *REPO.glob("docker/*/Dockerfile")]:
        text = path.read_text()
        assert not text.startswith("# syntax"), path
        users = re.findall(r"^USER (\S+)", text, re.M)
        assert not users or users[-1] != "root", f"{path} ends as root"
        if "apt-get install" in text:
            assert "rm -rf /var/lib/apt/lists/*" in text, f"{path} keeps apt lists"
    assert "git" in (REPO / "agents/devops/Dockerfile").read_text()


def test_dockerignore_keeps_secrets_and_local_state_out_of_builds() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "secrets", "**/__pycache__", ".pytest_cache", ".ruff_cache"} <= ignored


def test_agent_layers(compose: dict) -> None:
    for pool in ("devops", "platform", "code", "docker"):
        service = compose["services"][f"{pool}-agent"]
        by_target = {m["target"]: m for m in mounts(service)}
        assert by_target["/app/memory"]["source"] == f"{pool}-memory"
        assert f"{pool}-memory" in compose["volumes"]
        assert by_target["/app/context"] == {"source": "./context", "target": "/app/context", "read_only": True}
        if pool == "docker":  # reads no repository content: no task trees, no projects, next to the socket
            assert "/app/workspaces" not in by_target and "/app/projects" not in by_target
            assert service["environment"]["TASK_WORKSPACES"] == "false"
        else:
            assert "/app/workspace" not in by_target  # no per-replica tmpfs: task trees are on the shared volume
            workspaces = {"source": "workspaces", "target": "/app/workspaces", "read_only": False}
            assert by_target["/app/workspaces"] == workspaces
            projects = {"source": "${REYNOLDS_PROJECTS_DIR:-./projects}", "target": "/app/projects", "read_only": True}
            assert by_target["/app/projects"] == projects
        assert "/app/knowledge" not in by_target  # baked into the image; a volume would go stale
        dockerfile = (REPO / f"agents/{pool}/Dockerfile").read_text()
        assert f"COPY agents/{pool}/knowledge/ /app/knowledge/" in dockerfile
        assert service["environment"]["MCP_ENDPOINT"] == "http://reynolds:8080/agents/mcp"
        assert service["environment"]["AGENT_TOKEN_FILE"] == f"/run/secrets/agent_token_{pool}"  # its pool's only
        assert "AGENT_URL" not in service["environment"]  # each replica advertises its own address


def test_reynolds_and_every_agent_share_one_workspaces_volume(compose: dict, ci: dict) -> None:
    services = [*running(compose).items(), ("workbench-agent", ci["services"]["workbench-agent"])]
    sharing = {name for name, s in services if "workspaces:/app/workspaces" in s.get("volumes", [])}
    assert sharing == {"reynolds", "devops-agent", "platform-agent", "code-agent", "workbench-agent"}
    assert "workspaces" in compose["volumes"]
    env = compose["services"]["reynolds"]["environment"]
    assert env["REYNOLDS_WORKSPACES_DIR"] == "/app/workspaces" and env["REYNOLDS_PROJECTS_DIR"] == "/app/projects"
    dockerfile = (REPO / "agents/base/Dockerfile").read_text()
    assert "/app/workspaces" in dockerfile.split("chown", 1)[1].split("\n", 1)[0]  # the volume starts owned by 10001


def test_state_lives_in_named_volumes(compose: dict) -> None:
    services = compose["services"]
    assert {"source": "redis-data", "target": "/data", "read_only": False} in mounts(services["redis"])
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    assert any(m.get("source") == "postgres-data" for m in mounts(services["postgres"]))
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == (
        "/run/secrets/grafana_admin_password"
    )


def test_docker_socket_only_for_reynolds_and_the_docker_agent(compose: dict, ci: dict) -> None:
    with_socket = {
        name
        for name, service in [*compose["services"].items(), *ci["services"].items()]
        if any(m.get("source") == SOCKET for m in mounts(service))
    }
    assert with_socket == {"reynolds", "docker-agent"}  # never an agent that reads repository content
    for name in with_socket:
        assert compose["services"][name]["user"] == "10001:${DOCKER_GID:-10001}"
    trust = (REPO / "docs/deploy.md").read_text()
    assert "docker.sock" in trust and "trust" in trust.lower()


def test_secrets_come_from_files_with_an_example_each(compose: dict) -> None:
    declared = compose["secrets"]
    for name, spec in declared.items():
        assert spec["file"] == "${REYNOLDS_SECRETS_DIR:-./secrets}/" + name
        assert (REPO / "secrets.example" / name).is_file(), f"secrets.example/{name} missing"
    used = {s for service in compose["services"].values() for s in service.get("secrets", [])}
    assert used == set(declared)
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in service["secrets"], f"{name}: {key}"


def test_make_secrets_creates_every_secret_once(compose: dict, ci: dict, tmp_path: Path) -> None:
    target = tmp_path / "secrets"
    subprocess.run([REPO / "scripts/make-secrets.sh", target], check=True, capture_output=True)
    made = {p.name: p.read_text() for p in target.iterdir()}
    assert set(made) == set(compose["secrets"]) | set(ci["secrets"])
    random = [made[n] for n in ("postgres_password", "client_token", "agent_key", "grafana_admin_password")]
    assert all(len(v.strip()) >= 32 for v in random)
    assert len(set(random)) == len(random)
    for name in ("github_token", "openai_api_key", "m365_credentials", "tenant_id"):  # Swarm refuses empty secrets
        assert made[name].strip() == UNSET_SECRET
    key = PoolTokens(made["agent_key"].strip())
    assert made["agent_token_devops"].strip() == key.token_for("devops")  # derived as Reynolds derives it
    assert target.stat().st_mode & 0o777 == 0o700
    subprocess.run([REPO / "scripts/make-secrets.sh", target], check=True, capture_output=True)
    assert {p.name: p.read_text() for p in target.iterdir()} == made  # never overwritten
    (target / "tenant_id").write_text("")  # made by an older version: empty, which a Swarm refuses
    subprocess.run([REPO / "scripts/make-secrets.sh", target], check=True, capture_output=True)
    assert (target / "tenant_id").read_text().strip() == UNSET_SECRET


def test_ci_override_builds_state_services_locally_and_adds_workbench_agents(compose: dict, ci: dict) -> None:
    services = ci["services"]
    for name in ("postgres", "redis", "prometheus"):
        assert services[name]["pull_policy"] == "never"
        assert services[name]["build"]["dockerfile"] == f"docker/{name}/Dockerfile"
        assert services[name]["build"]["args"]["PYTHON_IMAGE"] == "${PYTHON_IMAGE:-python:3.11-slim}"
        # same interface as the official image: the main file's healthcheck and volumes still apply
        assert "healthcheck" not in services[name] and "volumes" not in services[name]
    assert services["grafana"]["profiles"] == ["grafana"]
    workbench = services["workbench-agent"]
    assert workbench["deploy"]["replicas"] == 2
    assert workbench["environment"]["AGENT_TYPE"] == "workbench"
    assert workbench["image"] == compose["services"]["agent-base"]["image"]
    assert workbench["depends_on"]["reynolds"]["condition"] == "service_healthy"
    assert "workbench-agent" not in compose["services"]


def test_tracing_is_an_optional_profile_and_off_unless_given_an_endpoint(compose: dict) -> None:
    collector = compose["services"]["otel-collector"]
    assert collector["profiles"] == ["tracing"]
    assert collector["networks"] == ["reynolds"]
    config = yaml.safe_load((REPO / "monitoring/otel-collector.yaml").read_text())
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    for name in OUR_IMAGES:
        environment = compose["services"][name]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", name
        assert "otel-collector" not in compose["services"][name].get("depends_on", {}), name
