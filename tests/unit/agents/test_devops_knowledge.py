"""The devops agent's knowledge and context files: they parse, every rule id the checks use is
documented, every secret pattern compiles, and the agent exposes them as MCP resources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from agents.devops.handoff import suggest_handoff
from agents.devops.secrets_scan import Policy, load_patterns

REPO = Path(__file__).resolve().parents[3]
KNOWLEDGE = REPO / "agents" / "devops" / "knowledge"
CONTEXT = REPO / "context"


@pytest.mark.parametrize(
    ("module", "rules_file"),
    [
        ("dockerfile.py", "dockerfile-rules.yaml"),
        ("compose.py", "compose-rules.yaml"),
        ("workflow.py", "workflow-rules.yaml"),
    ],
)
def test_every_rule_used_in_code_is_documented(module: str, rules_file: str) -> None:
    documented = yaml.safe_load((KNOWLEDGE / rules_file).read_text())
    code = (REPO / "agents" / "devops" / module).read_text() + (REPO / "agents" / "devops" / "tools.py").read_text()
    prefix = next(iter(documented))[:2]
    used = set(re.findall(rf'"({prefix}\d{{3}})"', code))
    assert used and used <= set(documented), used - set(documented)
    for rule in documented.values():
        assert rule["title"] and rule["severity"] in ("info", "warning", "error", "critical")


def test_secret_patterns_and_policy_load() -> None:
    patterns = load_patterns(yaml.safe_load((KNOWLEDGE / "secret-patterns.yaml").read_text()))
    assert {p.id for p in patterns} >= {"aws-access-key-id", "github-token", "private-key", "slack-token", "jwt"}
    policy = json.loads((CONTEXT / "infrastructure" / "security-policies.json").read_text())
    parsed = Policy.from_context(policy["secret_scanning"])
    assert parsed.value_allowed("changeme") and not parsed.value_allowed("Tr0ub4dor-and-3")
    assert parsed.path_allowed("a/testdata/x.txt") and parsed.path_allowed("testdata/x.txt")


def test_context_files_are_json_and_escalation_rules_are_ordered() -> None:
    for name in ("team/processes.json", "team/escalation.json", "team/preferences.json",
                 "infrastructure/security-policies.json", "infrastructure/resource-limits.json",
                 "infrastructure/monitoring.json"):  # fmt: skip
        json.loads((CONTEXT / name).read_text())
    escalation = json.loads((CONTEXT / "team" / "escalation.json").read_text())
    assert suggest_handoff(escalation, "scan_secrets", "critical").rule == "leaked-credential"
    assert suggest_handoff(escalation, "scan_secrets", "error").rule == "possible-credential"
    assert suggest_handoff(escalation, "scan_secrets", "warning") is None
    assert suggest_handoff(escalation, "git_status", "critical") is None


@pytest.mark.anyio
async def test_knowledge_is_served_as_resources(agent_client) -> None:
    client, _ = await agent_client("devops")
    uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "knowledge://devops/workflow-hardening.md" in uris
    assert "context://devops/team/escalation.json" in uris
