"""validate_compose on real Compose files (and build contexts) written to the agent's workspace."""

from __future__ import annotations

import pytest

BAD = """\
version: "3.8"
services:
  web:
    build: ./web
    ports:
      - "8080:80"
    volumes:
      - data:/var/lib/data
      - ./static:/static
    networks: [front, back]
    secrets: [api_key]
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
  db:
    image: postgres:16
    ports:
      - "127.0.0.1:8080:5432"
    configs:
      - source: pg_conf
        target: /etc/pg.conf
    secrets: [root_pw]
  worker:
    container_name: worker
    deploy:
      replicas: 3
      resources:
        limits: {cpus: "4", memory: 8G}
    ports: ["9000:9000", "99999:1"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 5m
      retries: 1
  ghost:
    environment: [A=1]
networks:
  front: {}
secrets:
  api_key:
    file: ./secrets/api_key.txt
"""

GOOD = """\
services:
  api:
    build: {context: ./api}
    ports: ["8000-8001:8000"]
    volumes: [data:/data]
    deploy:
      replicas: 2
      resources: {limits: {cpus: "1", memory: 512M}}
    depends_on:
      db: {condition: service_healthy}
  db:
    image: postgres:16
    secrets: [db_password]
    healthcheck: {test: ["CMD", "pg_isready"], interval: 10s, timeout: 5s, retries: 5}
    deploy: {resources: {limits: {cpus: "2", memory: 2G}}}
volumes:
  data:
secrets:
  db_password: {file: ./db_password.txt}
"""


def findings_by_rule(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in report["findings"]:
        out.setdefault(f["rule"], []).append(f)
    return out


@pytest.mark.anyio
async def test_every_known_defect_is_reported(agent_client) -> None:
    client, runtime = await agent_client("devops")
    stack = runtime.layers.workspace / "stack"
    stack.mkdir()
    (stack / "compose.yaml").write_text(BAD)
    result = await client.call_tool("validate_compose", {"path": "stack/compose.yaml"})
    assert not result.is_error, result.content[0].text
    report = result.structured_content
    rules = findings_by_rule(report)
    assert rules["CP002"][0]["line"] == 1
    assert {f["service"] for f in rules["CP005"]} == {"web"}  # ./web does not exist
    assert "'data'" in rules["CP006"][0]["message"] and rules["CP006"][0]["line"] == 8
    assert [f["message"] for f in rules["CP007"]] == ["network 'back' is not declared under top-level `networks`"]
    assert [f["message"] for f in rules["CP008"]] == ["secret 'root_pw' is not declared under top-level `secrets`"]
    assert rules["CP009"][0]["service"] == "db"
    assert rules["CP015"][0]["line"] == 41 and "api_key" in rules["CP015"][0]["message"]  # its file is missing
    assert {f["service"] for f in rules["CP010"]} == {"db", "worker"}  # 8080 clash; 3 replicas on 9000
    assert {f["service"] for f in rules["CP011"]} >= {"web", "db", "ghost"}
    assert "worker" not in {f["service"] for f in rules["CP011"]}
    assert rules["CP012"][0]["service"] == "worker"
    assert rules["CP013"][0]["service"] == "web" and "'db'" in rules["CP013"][0]["message"]
    assert "'cache'" in rules["CP014"][0]["message"]
    assert {f["service"] for f in rules["CP004"]} == {"worker", "ghost"}
    assert any("99999" in f["message"] for f in rules["CP019"])
    # team policy: resource-limits.json (max 2 cpus / 4G) and monitoring.json (interval <= 60 s, retries >= 2)
    assert {f["message"].split()[0] for f in rules["CP017"]} == {"cpus", "memory"}
    assert len(rules["CP018"]) == 2
    assert "web" in {f["service"] for f in rules["CP016"]}
    assert report["valid"] is False and report["services"] == ["web", "db", "worker", "ghost"]
    assert report["handoff"]["escalate_to"] == "platform-team"
    assert report["summary"].startswith("stack/compose.yaml: ")


@pytest.mark.anyio
async def test_healthy_stack_with_healthcheck_from_dockerfile(agent_client) -> None:
    client, runtime = await agent_client("devops")
    ws = runtime.layers.workspace
    (ws / "api").mkdir()
    # The api service has no healthcheck in the Compose file but its Dockerfile defines one.
    (ws / "api" / "Dockerfile").write_text("FROM python:3.11-slim\nHEALTHCHECK CMD curl -f http://localhost/\n")
    (ws / "db_password.txt").write_text("x")
    (ws / "docker-compose.yaml").write_text(GOOD)
    report = (await client.call_tool("validate_compose", {})).structured_content
    assert report["findings"] == [], report["findings"]
    assert report["valid"] and report["handoff"] is None


@pytest.mark.anyio
async def test_malformed_yaml_is_a_finding_with_its_line(agent_client) -> None:
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "broken.yaml").write_text("services:\n  web:\n    image: [nginx\n    ports: 1\n")
    report = (await client.call_tool("validate_compose", {"path": "broken.yaml"})).structured_content
    assert [f["rule"] for f in report["findings"]] == ["CP001"]
    assert report["findings"][0]["line"] == 4 and "invalid YAML" in report["findings"][0]["message"]
    assert report["valid"] is False


@pytest.mark.anyio
async def test_not_a_compose_file_and_bad_paths(agent_client) -> None:
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "list.yaml").write_text("- a\n- b\n")
    report = (await client.call_tool("validate_compose", {"path": "list.yaml"})).structured_content
    assert [f["rule"] for f in report["findings"]] == ["CP003"]
    escape = await client.call_tool("validate_compose", {"path": "../../etc/passwd"})
    assert escape.is_error and "outside" in escape.content[0].text
    missing = await client.call_tool("validate_compose", {"path": "docker-compose.yaml"})
    assert missing.is_error and "does not exist" in missing.content[0].text


async def compose_report(agent_client, text: str, env: str | None = None) -> dict:
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "compose.yaml").write_text(text)
    if env is not None:
        (runtime.layers.workspace / ".env").write_text(env)
    result = await client.call_tool("validate_compose", {"path": "compose.yaml"})
    assert not result.is_error, result.content[0].text
    return result.structured_content


@pytest.mark.anyio
async def test_wrong_types_are_schema_findings_not_crashes(agent_client) -> None:
    text = (
        "services:\n  web:\n    image: nginx:1.27\n    ports: 8080\n    depends_on: db\n    volumes: 3\n"
        "    restart: sometimes\n  db:\n    image: postgres:16\n"
    )
    report = await compose_report(agent_client, text)
    schema = {(f["service"], f["line"]) for f in report["findings"] if f["rule"] == "CP020"}
    assert {("web", 4), ("web", 5), ("web", 6)} <= schema
    # a string depends_on names one service, not three characters
    assert not [f for f in report["findings"] if f["rule"] == "CP014"]
    assert report["valid"] is False


@pytest.mark.anyio
async def test_variables_are_interpolated_from_the_env_file_only(agent_client, monkeypatch) -> None:
    monkeypatch.setenv("LEAKED", "agent-secret")
    text = (
        "services:\n  web:\n    image: ${REGISTRY:-docker.io}/app:${TAG}\n"
        '    ports: ["${PORT:-8080}:80", "${PORT:-8080}:81"]\n    environment:\n      KEY: $LEAKED\n'
        "      NEED: ${NEED:?set NEED in .env}\n      COST: $$5\n"
    )
    report = await compose_report(agent_client, text, env="# deploy settings\nexport TAG='1.2.3'\n")
    rules = {(f["rule"], f["line"]) for f in report["findings"]}
    assert ("CP021", 6) in rules and ("CP022", 7) in rules
    assert not [f for f in report["findings"] if f["rule"] == "CP021" and "TAG" in f["message"]]
    assert not [f for f in report["findings"] if f["rule"] == "CP020"]
    assert not any("agent-secret" in f["message"] for f in report["findings"])
