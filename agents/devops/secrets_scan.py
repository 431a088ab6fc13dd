"""Secret scanning: walk a tree, match known credential patterns (knowledge/secret-patterns.yaml) and
high-entropy strings, honour the security policy's allowlist, and report redacted previews only."""

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

MAX_FINDINGS = 1000
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
        relative = path.relative_to(workspace).as_posix()
        if path.is_symlink():
            result.skipped.append(Skipped(file=relative, reason="symbolic link (not followed)"))
            continue
        if policy.path_allowed(relative):
            result.skipped.append(Skipped(file=relative, reason="allowlisted by security policy"))
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
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            result.findings.extend(_scan_line(relative, number, line, patterns, policy))
            if len(result.findings) >= MAX_FINDINGS:
                result.findings = result.findings[:MAX_FINDINGS]
                result.truncated = True
                return result
    return result


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
            if not policy.value_allowed(line[start:end]) and not _overlaps(hits, start, end):
                hits.append((start, end, pattern, None))
    if policy.entropy and "high-entropy-string" not in policy.disabled:
        for m in CANDIDATE.finditer(line):
            token = m.group("tok")
            start, end = m.span("tok")
            if len(token) < policy.min_length or _overlaps(hits, start, end) or policy.value_allowed(token):
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
    n = len(scan_result.findings)
    skipped = f"; {len(scan_result.skipped)} file(s) skipped" if scan_result.skipped else ""
    if not n:
        return f"no secrets found in {scan_result.files_scanned} file(s) under {target}{skipped}"
    files = len({f.file for f in scan_result.findings})
    by = Counter(f.severity for f in scan_result.findings)
    order = ["critical", "error", "warning", "info"]
    severities = ", ".join(f"{by[s]} {s}" for s in order if by[s])
    more = " (truncated)" if scan_result.truncated else ""
    return (
        f"{n} possible secret(s){more} in {files} of {scan_result.files_scanned} file(s) under {target} "
        f"({severities}){skipped}"
    )
