"""scan_secrets on a real tree with planted fake secrets. The secrets are assembled at run time so this
file itself carries no credential-shaped strings."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from agents.devops.secrets_scan import shannon_entropy

AWS_KEY = "AKIA" + "Q3JZ7XK2M4PLN8RT"
GH_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-" + "2048-991-Zq8vYt3LpW"
JWT = ".".join(
    base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
    for part in ({"alg": "HS256", "typ": "JWT"}, {"sub": "42", "name": "ci"}, {"sig": "x" * 12})
)
PASSWORD = "Tr0ub4dor-and-3"
SEED = base64.b64encode(hashlib.sha256(b"reynolds").digest()).decode()
PLANTED = [AWS_KEY, GH_TOKEN, SLACK, JWT, PASSWORD, SEED]


def plant(root: Path) -> None:
    (root / "app").mkdir(parents=True)
    (root / "app" / "settings.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'
        f'db_password = "{PASSWORD}"\n'
        'admin_password = "changeme"\n'  # allowlisted placeholder value
        'EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"\n'  # AWS's documented example key, allowlisted
        f'legacy = "{GH_TOKEN}"  # secret-scan: allow\n'  # inline allow marker
    )
    (root / "deploy.env").write_text(f"GITHUB_TOKEN={GH_TOKEN}\nSLACK_BOT={SLACK}\n")
    (root / "id_rsa").write_text("-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    (root / "config.yaml").write_text(f'session: "{JWT}"\nsigning_seed: "{SEED}"\nname: "just-a-plain-identifier"\n')
    (root / "README.md").write_text("Deploy with `make deploy`. Commit 8f4b7f84864484a7bf31766abe9204da3cbe65b3.\n")
    # never scanned: .git, binaries, files over the cap, allowlisted paths
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(f"token = {GH_TOKEN}\n")
    (root / "logo.png").write_bytes(b"\x89PNG\0\0" + GH_TOKEN.encode())
    (root / "dump.sql").write_text(f"-- {AWS_KEY}\n" + "x" * 1_100_000)
    (root / "testdata").mkdir()
    (root / "testdata" / "fixture.txt").write_text(f"{AWS_KEY}\n")


@pytest.mark.anyio
async def test_planted_secrets_are_found_and_redacted(agent_client) -> None:
    client, runtime = await agent_client("devops")
    plant(runtime.layers.workspace / "repo")
    result = await client.call_tool("scan_secrets", {"path": "repo"})
    assert not result.is_error, result.content[0].text
    report = result.structured_content
    found = {(f["file"], f["line"], f["rule"]) for f in report["findings"]}
    assert found == {
        ("repo/app/settings.py", 1, "aws-access-key-id"),
        ("repo/app/settings.py", 2, "generic-password"),
        ("repo/deploy.env", 1, "github-token"),
        ("repo/deploy.env", 2, "slack-token"),
        ("repo/id_rsa", 1, "private-key"),
        ("repo/config.yaml", 1, "jwt"),
        ("repo/config.yaml", 2, "high-entropy-string"),
        ("repo/testdata/fixture.txt", 1, "aws-access-key-id"),  # read, reported at info
    }, found
    severities = {f["rule"]: f["severity"] for f in report["findings"] if "testdata" not in f["file"]}
    fixture = next(f for f in report["findings"] if "testdata" in f["file"])
    assert fixture["severity"] == "info" and "allowlists" in fixture["message"]
    assert severities["aws-access-key-id"] == "critical" and severities["high-entropy-string"] == "warning"
    # never the whole secret, anywhere in the result
    text = json.dumps(report) + result.content[0].text
    for secret in PLANTED:
        assert secret not in text
    aws = next(f for f in report["findings"] if f["rule"] == "aws-access-key-id")
    assert aws["preview"] == 'AWS_ACCESS_KEY_ID = "AKIA…[16 redacted]"'
    skipped = {s["file"]: s["reason"] for s in report["skipped"]}
    assert skipped["repo/logo.png"] == "binary"
    assert "larger than" in skipped["repo/dump.sql"]
    assert not any(".git/" in f for f in skipped)  # .git is not even walked
    assert report["files_scanned"] == 6
    assert report["summary"] == (
        "8 possible secret(s) in 5 of 6 file(s) under repo (4 critical, 2 error, 1 warning, 1 info); 2 file(s) skipped"
    )
    handoff = report["handoff"]
    assert handoff["escalate_to"] == "security-team" and handoff["rule"] == "leaked-credential"


@pytest.mark.anyio
async def test_clean_tree_and_single_file(agent_client) -> None:
    client, runtime = await agent_client("devops")
    ws = runtime.layers.workspace
    (ws / "src").mkdir()
    (ws / "src" / "main.py").write_text(
        'print("hello")\nURL = "https://example.com/a/b/c/d"\n'
        'SCHEMA = "http://www.w3.org/2001/XMLSchema-instance"\nDATA = "/var/lib/app/cache/2024-01-01/shard-7a"\n'
    )
    report = (await client.call_tool("scan_secrets", {"path": "src"})).structured_content
    assert report["findings"] == [] and report["handoff"] is None
    assert report["summary"] == "no secrets found in 1 file(s) under src"
    (ws / "one.env").write_text(f"KEY={GH_TOKEN}\n")
    single = (await client.call_tool("scan_secrets", {"path": "one.env"})).structured_content
    assert [f["rule"] for f in single["findings"]] == ["github-token"]


@pytest.mark.anyio
async def test_symlinks_out_of_the_workspace_are_not_followed(agent_client, tmp_path: Path) -> None:
    client, runtime = await agent_client("devops")
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{AWS_KEY}\n")
    (runtime.layers.workspace / "tree").mkdir()
    (runtime.layers.workspace / "tree" / "link.txt").symlink_to(outside)
    report = (await client.call_tool("scan_secrets", {"path": "tree"})).structured_content
    assert report["findings"] == []
    assert report["skipped"] == [{"file": "tree/link.txt", "reason": "symbolic link (not followed)"}]


@pytest.mark.anyio
async def test_bad_paths(agent_client) -> None:
    client, _ = await agent_client("devops")
    escape = await client.call_tool("scan_secrets", {"path": "../etc/passwd"})
    assert escape.is_error and "outside" in escape.content[0].text
    missing = await client.call_tool("scan_secrets", {"path": "no-such-dir"})
    assert missing.is_error and "does not exist" in missing.content[0].text


def test_entropy_separates_random_from_words() -> None:
    assert shannon_entropy("aaaaaaaa") == 0.0
    assert shannon_entropy(SEED) > 4.3 > shannon_entropy("just-a-plain-identifier")


@pytest.mark.anyio
async def test_the_cap_keeps_the_most_severe_found_anywhere(agent_client) -> None:
    client, runtime = await agent_client("devops")
    root = runtime.layers.workspace / "repo"
    (root / "aaa-fixtures").mkdir(parents=True)
    noise = "".join(f'k{i} = "{hashlib.sha256(str(i).encode()).hexdigest()}"\n' for i in range(1500))
    (root / "aaa-fixtures" / "hashes.py").write_text(noise)  # 1,500 entropy warnings first in file order
    (root / "zzz").mkdir()
    (root / "zzz" / "late.env").write_text(f"AWS_KEY={AWS_KEY}\nGITHUB_TOKEN={GH_TOKEN}\n")
    report = (await client.call_tool("scan_secrets", {"path": "repo"})).structured_content
    assert report["truncated"] and report["total_findings"] == 1502 and len(report["findings"]) == 1000
    assert {f["rule"] for f in report["findings"] if f["file"] == "repo/zzz/late.env"} == {
        "aws-access-key-id",
        "github-token",
    }
    assert report["counts"]["warning"] == 1500 and report["counts"]["critical"] == 2
    assert "1000 most severe shown" in report["summary"]


@pytest.mark.anyio
async def test_team_policy_on_top_of_the_patterns(agent_client) -> None:
    client, runtime = await agent_client("devops")
    root = runtime.layers.workspace / "repo"
    root.mkdir()
    gitlab = "glpat-" + "Zx8Yq2Lm4Np6Rt8Vw0Ab"
    (root / ".env").write_text(
        "DB_PASSWORD=Hunter2Hunter2\n"  # unquoted .env value
        "DB_PASSWORD_FILE=/run/secrets/db\n"  # a pointer, not a secret
        f"GITLAB={gitlab}\n"
        "DATABASE_URL=postgres://app:" + "s3cr3tPw" + "@db:5432/app\n"
        "TEMPLATE_URL=postgres://app:${DB_PASSWORD}@db/app\n"
    )
    (root / "settings.yaml").write_text(
        "password_file: '/run/secrets/password'\n"
        "token: 'ghp_" + "x" * 36 + "'\n"  # a placeholder
        "role: AROA" + "Q3JZ7XK2M4PLN8RT" + "\n"  # an IAM role id, not a key
    )
    report = (await client.call_tool("scan_secrets", {"path": "repo"})).structured_content
    found = {(f["file"], f["line"], f["rule"]) for f in report["findings"]}
    assert found == {
        ("repo/.env", 1, "generic-password-unquoted"),
        ("repo/.env", 3, "gitlab-token"),
        ("repo/.env", 4, "url-credentials"),
    }, found
    assert gitlab not in json.dumps(report)


@pytest.mark.anyio
async def test_a_non_utf8_file_name_does_not_fail_the_scan(agent_client) -> None:
    client, runtime = await agent_client("devops")
    root = runtime.layers.workspace / "repo"
    root.mkdir()
    (root / "ok.txt").write_text("nothing here\n")
    write_latin1_named(root)
    result = await client.call_tool("scan_secrets", {"path": "repo"})
    assert not result.is_error, result.content[0].text
    files = {f["file"] for f in result.structured_content["findings"]}
    assert files == {"repo/caf\\xe9.env"}


def write_latin1_named(root: Path) -> None:
    """A file whose name is the Latin-1 byte 0xE9, not UTF-8 (as an old archive would unpack it)."""
    (root / b"caf\xe9.env".decode("utf-8", "surrogateescape")).write_text(f"GITHUB_TOKEN={GH_TOKEN}\n")


SENDGRID = "SG." + "aB3dE5gH7jK9mN1pQ3sT5v" + "." + "wX7zA9cE1gI3kM5oQ7sU9wY1aC3eG5iK7mO9qS1uW3y"


@pytest.mark.anyio
async def test_detect_secrets_adds_the_vendor_formats_reynolds_has_no_pattern_for(agent_client) -> None:
    client, runtime = await agent_client("devops")
    root = runtime.layers.workspace / "repo"
    (root / "fixtures").mkdir(parents=True)
    (root / "mail.yaml").write_text(f"sendgrid:\n  key: {SENDGRID}\n")
    (root / "old_mail.py").write_text(f'old = "{SENDGRID}"  # secret-scan: allow\n')
    (root / "testdata").mkdir()
    (root / "testdata" / "mail.json").write_text(f'{{"key": "{SENDGRID}"}}\n')
    report = (await client.call_tool("scan_secrets", {"path": "repo"})).structured_content
    assert report["engines"] == ["reynolds patterns", "detect-secrets"] and not report["notes"]
    found = {(f["file"], f["line"], f["rule"], f["severity"]) for f in report["findings"]}
    assert ("repo/mail.yaml", 2, "detect-secrets:sendgrid-api-key", "critical") in found
    assert ("repo/testdata/mail.json", 1, "detect-secrets:sendgrid-api-key", "info") in found
    assert not [f for f in found if f[0] == "repo/old_mail.py"]  # the inline marker silences it
    assert SENDGRID not in json.dumps(report)


@pytest.mark.anyio
async def test_without_detect_secrets_the_scan_says_what_to_install(agent_client, monkeypatch) -> None:
    client, runtime = await agent_client("devops")
    (runtime.layers.workspace / "a.txt").write_text("nothing\n")
    monkeypatch.setattr("agents.runtime.sandbox.shutil.which", lambda *a, **k: None)
    result = await client.call_tool("scan_secrets", {"path": "."})
    assert result.is_error and "detect-secrets is not installed: pip install detect-secrets" in result.content[0].text


@pytest.mark.anyio
async def test_a_tree_named_like_an_option_is_scanned(agent_client) -> None:
    client, runtime = await agent_client("devops")
    tree = runtime.layers.workspace / "--version"
    tree.mkdir()
    (tree / "mail.yaml").write_text(f"key: {SENDGRID}\n")
    result = await client.call_tool("scan_secrets", {"path": "--version"})
    assert not result.is_error, result.content[0].text
    assert {f["rule"] for f in result.structured_content["findings"]} >= {"detect-secrets:sendgrid-api-key"}
