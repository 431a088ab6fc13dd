"""detect-secrets (PyPI, Yelp's scanner) as scan_secrets' engine for vendor credential formats.

It runs through the sandbox (it reads repository content) with its own detectors for the formats
Reynolds' patterns do not know (Azure storage, Discord, IBM, Mailchimp, npm, OpenAI, PyPI, SendGrid,
Square, Telegram, Artifactory, Cloudant, SoftLayer ...). Its detectors for what Reynolds' patterns
already cover (AWS, GitHub, GitLab, JWT, private keys, Slack, Stripe, Twilio, URL passwords, keywords,
entropy) are switched off, so Reynolds' policy alone decides those (placeholders, pointer keys, the
allowlists). detect-secrets reports a hash, never the secret, so a finding names the line only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agents.runtime.sandbox import Sandbox, installed

OFF = (
    "AWSKeyDetector",
    "BasicAuthDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "JwtTokenDetector",
    "PrivateKeyDetector",
    "SlackDetector",
    "StripeDetector",
    "TwilioKeyDetector",
    "KeywordDetector",
    "Base64HighEntropyString",
    "HexHighEntropyString",
    "IPPublicDetector",  # an address is not a credential
)
TIMEOUT_S = 300.0
CRITICAL = re.compile(r"(?i)azure|openai|pypi|npm|sendgrid|ibm|softlayer|artifactory|cloudant|square|mailchimp")


@dataclass(frozen=True)
class Hit:
    file: str
    line: int
    type: str  # detect-secrets' detector name, e.g. "Azure Storage Account access key"

    @property
    def rule(self) -> str:
        return "detect-secrets:" + re.sub(r"[^a-z0-9]+", "-", self.type.lower()).strip("-")

    @property
    def severity(self) -> str:
        return "critical" if CRITICAL.search(self.type) else "error"


@dataclass
class Result:
    hits: list[Hit]
    note: str | None  # why some or all of the engine's findings are missing


def find_binary() -> str:
    return installed("detect-secrets", "pip install detect-secrets (in the devops image)")


def command(binary: str, target: str, skip_dirs: set[str]) -> list[str]:
    skipped = "|".join(re.escape(d) for d in sorted(skip_dirs))
    argv = [binary, "scan", "--all-files", "--exclude-files", rf"(^|/)({skipped})/"]
    for plugin in OFF:
        argv += ["--disable-plugin", plugin]
    return [*argv, target if target == "." else f"./{target}"]  # never read as an option


async def scan(sandbox: Sandbox, target: str, skip_dirs: set[str]) -> Result:
    """Hits under workspace path ``target``; file names are relative to the workspace, as Reynolds' are."""
    run = await sandbox.run(command(find_binary(), target, skip_dirs), cwd=".", timeout_s=TIMEOUT_S)
    if run.truncated:
        return Result([], "detect-secrets' report was over the sandbox's output cap; its findings are left out")
    if run.exit_code != 0:
        return Result([], f"detect-secrets failed (exit {run.exit_code}): {run.stderr.strip()[:300]}")
    try:
        results = json.loads(run.stdout).get("results", {})
    except (json.JSONDecodeError, AttributeError) as err:
        return Result([], f"detect-secrets printed a report that is not JSON: {err}")
    hits = [
        Hit(file=str(item.get("filename", name)), line=int(item.get("line_number", 0)), type=str(item.get("type")))
        for name, items in results.items()
        for item in items
        if isinstance(item, dict)
    ]
    return Result(hits, None)
