"""Secret scanning: walk a tree, match known credential patterns (knowledge/secret-patterns.yaml) and
high-entropy strings, apply the team's policy, and report redacted previews only.

Every file is read; the findings returned are capped afterwards, most severe first, so fixture noise
early in a tree cannot hide a real key later in it. Policy on top of the patterns: a value that is a
placeholder (``ghp_xxxx…``, one character repeated) or a key that only points at a secret
(``password_file``, ``TOKEN_PATH``) is not a secret; allowlisted paths (``**/testdata/**``) are still
read, and what they hold is reported at ``info`` so a real key there is seen without paging anyone."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agents.devops.findings import Finding

MAX_FINDINGS = 1000  # returned; every finding is counted
KEEP_WHILE_SCANNING = 5 * MAX_FINDINGS  # findings held in memory before the least severe are dropped
SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
POINTER_KEY = re.compile(r"(?:[_.-](?i:file|path|dir|name|id)|File|Path|Dir|Name|Id)$")
KEY_BEFORE = re.compile(r"([\w.-]+)['\"]?\s*[:=]\s*['\"]?$")
# Entropy candidates: a whole quoted string or a whole assigned value, so commit SHAs in `uses: x@sha`
# and words inside prose are not candidates.
CANDIDATE = re.compile(r"(?:[\"'`]|[=:]\s*)(?P<tok>[A-Za-z0-9+/=_\-.]{16,})(?=[\"'`]|\s|$|[,;)])")
HEX = re.compile(r"^[0-9a-fA-F]+$")


class SecretFinding(Finding):
    file: str = Field(description="path relative to the workspace")
    preview: str = Field(description="the line with every secret on it redacted")
    entropy: float | None = Field(None, description="Shannon entropy (bits/char) for entropy findings")


class Skipped(BaseModel):
    file: str
    reason: str


@dataclass
class Pattern:
    id: str
    title: str
    severity: str
    regex: re.Pattern[str]


@dataclass
class Policy:
    """The ``secret_scanning`` section of context/infrastructure/security-policies.json."""

    max_file_bytes: int = 1_048_576
    skip_dirs: set[str] = field(default_factory=lambda: {".git"})
    allow_paths: list[str] = field(default_factory=list)
    allow_values: list[re.Pattern[str]] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    overrides: dict[str, str] = field(default_factory=dict)
    marker: str | None = None
    entropy: bool = True
    min_length: int = 20
    base64_threshold: float = 4.3
    hex_threshold: float = 3.0
    entropy_severity: str = "warning"

    @classmethod
    def from_context(cls, section: dict[str, Any] | None) -> Policy:
        s = section or {}
        entropy = s.get("entropy", {})
        allow = s.get("allowlist", {})
        return cls(
            max_file_bytes=int(s.get("max_file_bytes", 1_048_576)),
            skip_dirs={".git", *s.get("skip_dirs", [])},
            allow_paths=list(allow.get("paths", [])),
            allow_values=[re.compile(v) for v in allow.get("values", [])],
            disabled=set(s.get("disabled_rules", [])),
            overrides=dict(s.get("severity_overrides", {})),
            marker=s.get("inline_allow_marker"),
            entropy=bool(entropy.get("enabled", True)),
            min_length=int(entropy.get("min_length", 20)),
            base64_threshold=float(entropy.get("base64_threshold", 4.3)),
            hex_threshold=float(entropy.get("hex_threshold", 3.0)),
            entropy_severity=entropy.get("severity", "warning"),
        )

    def path_allowed(self, relative: str) -> bool:
        return any(
            fnmatch(relative, pat) or (pat.startswith("**/") and fnmatch(relative, pat[3:])) for pat in self.allow_paths
        )

    def value_allowed(self, value: str) -> bool:
        return any(p.search(value) for p in self.allow_values)


@dataclass
class Scan:
    files_scanned: int = 0
    findings: list[SecretFinding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    truncated: bool = False
    total_findings: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # severity -> findings, all of them
    files_hit: set[str] = field(default_factory=set)
    lines_hit: set[tuple[str, int]] = field(default_factory=set)
    engines: list[str] = field(default_factory=lambda: ["reynolds patterns"])
    notes: list[str] = field(default_factory=list)

    def add(self, found: list[SecretFinding]) -> None:
        self.total_findings += len(found)
        self.counts.update(f.severity for f in found)
        self.files_hit.update(f.file for f in found)
        # lines a specific pattern matched; another engine's hit there is the same secret
        self.lines_hit.update((f.file, f.line or 0) for f in found if f.rule != "high-entropy-string")
        self.findings.extend(found)
        if len(self.findings) > KEEP_WHILE_SCANNING:
            self._keep_most_severe(MAX_FINDINGS)

    def finish(self) -> None:
        self.truncated = self.total_findings > MAX_FINDINGS
        self._keep_most_severe(MAX_FINDINGS)

    def _keep_most_severe(self, limit: int) -> None:
        self.findings.sort(key=lambda f: SEVERITY_RANK.get(f.severity, 9))  # stable: file order within a severity
        del self.findings[limit:]
        self.findings.sort(key=lambda f: (f.file, f.line or 0))


def load_patterns(entries: list[dict[str, Any]]) -> list[Pattern]:
    return [
        Pattern(e["id"], e.get("title", e["id"]), e.get("severity", "error"), re.compile(e["regex"])) for e in entries
    ]


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def scan(workspace: Path, target: Path, patterns: list[Pattern], policy: Policy) -> Scan:
    """Scan ``target`` (a file or a directory inside ``workspace``)."""
    result = Scan()
    for path in _files(target, policy):
        relative = shown(path.relative_to(workspace).as_posix())
        if path.is_symlink():
            result.skipped.append(Skipped(file=relative, reason="symbolic link (not followed)"))
            continue
        if not path.is_file():
            result.skipped.append(Skipped(file=relative, reason="not a regular file"))
            continue
        size = path.stat().st_size
        if size > policy.max_file_bytes:
            result.skipped.append(Skipped(file=relative, reason=f"larger than {policy.max_file_bytes} bytes"))
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            result.skipped.append(Skipped(file=relative, reason="binary"))
            continue
        result.files_scanned += 1
        allowlisted = policy.path_allowed(relative)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            found = _scan_line(relative, number, line, patterns, policy)
            if allowlisted:
                found = [_as_allowlisted(f) for f in found]
            result.add(found)
    result.finish()
    return result


def shown(name: str) -> str:
    """A path as text that survives JSON: bytes that are not UTF-8 (a hostile file name) as \\x escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def add_engine_hits(result: Scan, workspace: Path, hits: list[Any], policy: Policy, engine: str) -> None:
    """Add another scanner's hits (file, line, type, rule, severity) on lines Reynolds found nothing on,
    with the same policy: the inline marker silences a line, allowlisted paths report at info."""
    found = []
    skipped = {s.file for s in result.skipped}  # too big, binary, symlinks: skipped for every engine
    for hit in hits:
        file = shown(hit.file.removeprefix("./"))
        if file in skipped or (file, hit.line) in result.lines_hit:
            continue
        if _line_allowed(workspace / hit.file, hit.line, policy):
            continue
        finding = SecretFinding(
            rule=hit.rule,
            title=f"{hit.type} ({engine})",
            severity=policy.overrides.get(hit.rule, hit.severity),  # type: ignore[arg-type]
            message=f"{hit.type} at {file}:{hit.line} (found by {engine})",
            line=hit.line,
            file=file,
            preview=f"[line withheld: {engine} names the line, not where on it the secret is]",
            fix="Remove it, rotate the credential, and load it from a secret store or *_FILE at run time.",
        )
        found.append(_as_allowlisted(finding) if policy.path_allowed(file) else finding)
    result.engines.append(engine)
    result.add(found)
    result.finish()


def _line_allowed(path: Path, number: int, policy: Policy) -> bool:
    """The line carries the inline allow marker (files over the size cap count as not allowed)."""
    if not policy.marker or not path.is_file() or path.stat().st_size > policy.max_file_bytes:
        return False
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return 0 < number <= len(lines) and policy.marker in lines[number - 1]


def _as_allowlisted(finding: SecretFinding) -> SecretFinding:
    note = " (in a path the security policy allowlists: reported, not escalated)"
    return finding.model_copy(update={"severity": "info", "message": finding.message + note})


def is_placeholder(value: str) -> bool:
    """``ghp_xxxxxxxx…``, ``AKIA0000…``, ``<your-token>``: a value written to be replaced, not a credential."""
    body = re.sub(r"^[a-z]{2,5}[_-]|^(?:AKIA|ASIA)", "", value)
    return len(set(body.lower())) <= 3 or bool(re.search(r"(?i)x{6,}|\*{4,}|your[_-]|example|placeholder", body))


def _points_at_secret(line: str, start: int) -> bool:
    """The key the value is assigned to only names where a secret is (``password_file: /run/secrets/db``)."""
    m = KEY_BEFORE.search(line[:start])
    return bool(m and POINTER_KEY.search(m.group(1)))


def _files(target: Path, policy: Policy) -> list[Path]:
    if not target.is_dir():
        return [target]
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(target):  # does not descend into symlinked dirs
        dirnames[:] = sorted(d for d in dirnames if d not in policy.skip_dirs)
        out.extend(Path(dirpath) / name for name in sorted(filenames))
    return out


def _scan_line(file: str, number: int, line: str, patterns: list[Pattern], policy: Policy) -> list[SecretFinding]:
    if policy.marker and policy.marker in line:
        return []
    hits: list[tuple[int, int, Pattern | None, float | None]] = []
    for pattern in patterns:
        if pattern.id in policy.disabled:
            continue
        for m in pattern.regex.finditer(line):
            group = "secret" if "secret" in pattern.regex.groupindex else 0
            start, end = m.span(group)
            value = line[start:end]
            if policy.value_allowed(value) or _overlaps(hits, start, end) or is_placeholder(value):
                continue
            if pattern.id.startswith("generic-password") and _points_at_secret(line, start):
                continue
            hits.append((start, end, pattern, None))
    if policy.entropy and "high-entropy-string" not in policy.disabled:
        for m in CANDIDATE.finditer(line):
            token = m.group("tok")
            start, end = m.span("tok")
            if len(token) < policy.min_length or _overlaps(hits, start, end) or policy.value_allowed(token):
                continue
            if is_placeholder(token) or _points_at_secret(line, start):
                continue
            if token.startswith("/") or line[:start].endswith("://"):
                continue  # a URL or file path: long and varied, but not a secret
            entropy = shannon_entropy(token)
            is_hex = bool(HEX.match(token)) and len(token) >= 32
            looks_random = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
            if (is_hex and entropy >= policy.hex_threshold) or (
                not HEX.match(token) and looks_random and entropy >= policy.base64_threshold
            ):
                hits.append((start, end, None, round(entropy, 2)))
    if not hits:
        return []
    preview = _redact(line, [(s, e) for s, e, _, _ in hits])
    findings = []
    for start, end, pattern, entropy in sorted(hits, key=lambda h: h[0]):
        rule = pattern.id if pattern else "high-entropy-string"
        severity = policy.overrides.get(rule) or (pattern.severity if pattern else policy.entropy_severity)
        title = pattern.title if pattern else "High-entropy string"
        what = f"{title} ({end - start} chars)" + (f", entropy {entropy} bits/char" if entropy else "")
        findings.append(
            SecretFinding(
                rule=rule,
                title=title,
                severity=severity,  # type: ignore[arg-type]
                message=f"{what} at {file}:{number}",
                line=number,
                file=file,
                preview=preview,
                entropy=entropy,
                fix="Remove it, rotate the credential, and load it from a secret store or *_FILE at run time.",
            )
        )
    return findings


def _overlaps(hits: list[tuple[int, int, Any, Any]], start: int, end: int) -> bool:
    return any(start < e and s < end for s, e, _, _ in hits)


def _redact(line: str, spans: list[tuple[int, int]]) -> str:
    """The line with each secret cut to a short hint: at most 4 leading characters, never more than a quarter."""
    out, cursor = [], 0
    for start, end in sorted(spans):
        secret = line[start:end]
        keep = min(4, len(secret) // 4)
        out += [line[cursor:start], secret[:keep], f"…[{len(secret) - keep} redacted]"]
        cursor = end
    out.append(line[cursor:])
    text = "".join(out).strip()
    return text if len(text) <= 200 else text[:199] + "…"


def summarize(scan_result: Scan, target: str) -> str:
    """One line for humans and plans: how many secrets, where, how bad."""
    n = scan_result.total_findings
    skipped = f"; {len(scan_result.skipped)} file(s) skipped" if scan_result.skipped else ""
    if not n:
        return f"no secrets found in {scan_result.files_scanned} file(s) under {target}{skipped}"
    files = len(scan_result.files_hit)
    by = scan_result.counts
    order = ["critical", "error", "warning", "info"]
    severities = ", ".join(f"{by[s]} {s}" for s in order if by[s])
    more = f" ({len(scan_result.findings)} most severe shown)" if scan_result.truncated else ""
    return (
        f"{n} possible secret(s){more} in {files} of {scan_result.files_scanned} file(s) under {target} "
        f"({severities}){skipped}"
    )
