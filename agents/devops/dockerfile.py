"""Dockerfile linting: a parser for logical instructions (line continuations, comments inside them,
the ``escape`` directive, heredocs) and the checks DF001-DF019 described in knowledge/dockerfile-rules.yaml."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from agents.devops.findings import Finding, RuleBook

KNOWN = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}
ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst)$", re.IGNORECASE)
HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL", re.IGNORECASE)
# A variable that only *points at* a secret (a file, a directory) is fine to set.
POINTER_SUFFIX = re.compile(r"_(FILE|PATH|DIR|NAME|ID)$", re.IGNORECASE)
APT_INSTALL = re.compile(r"\bapt(?:-get)?\s+(?:-\S+\s+)*install\b")
SHELL_SPLIT = re.compile(r"&&|\|\||;|\||\n")
ROOT_USERS = {"root", "0", "root:root", "0:0"}
# Reynolds' team-policy layer on top of hadolint: the rules hadolint has no equivalent of (the security
# policy's non-root requirement, secret-looking build variables, piping a download into a shell).
POLICY_RULES = frozenset({"DF007", "DF014", "DF019"})


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int
    body: str = ""  # heredoc text, if any


@dataclass
class Lint:
    findings: list[Finding] = field(default_factory=list)
    instructions: int = 0
    stages: int = 0


def parse(text: str) -> list[Instruction]:
    """Logical instructions with their first line; comment lines inside a continuation are dropped,
    as the builder does."""
    lines = text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives sit at the very top, before any other line
        m = re.match(r"#\s*(\w+)\s*=\s*(\S+)\s*$", raw.strip())
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            escape = m.group(2)
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i + 1
        parts: list[str] = []
        while True:
            current = lines[i].rstrip()
            if current.endswith(escape):
                parts.append(current[:-1])
                i += 1
                while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
            else:
                parts.append(current)
                i += 1
                break
        logical = " ".join(p.strip() for p in parts)
        # the builder splits the instruction from its arguments at any whitespace, tabs included
        keyword, args = [*logical.split(None, 1), ""][:2]
        instruction = Instruction(keyword.upper(), args.strip(), start)
        for dash, _quote, word in HEREDOC.findall(args) if instruction.keyword in ("RUN", "COPY") else []:
            body: list[str] = []
            while i < len(lines):
                candidate = lines[i].lstrip("\t") if dash else lines[i]
                i += 1
                if candidate.rstrip() == word:
                    break
                body.append(lines[i - 1])
            instruction.body += "\n".join(body) + "\n"
        out.append(instruction)
    return out


def lint(text: str, book: RuleBook, require_non_root: bool = True) -> Lint:
    """Every finding in a Dockerfile's text."""
    result = Lint()
    instructions = parse(text)
    result.instructions = len(instructions)
    add = result.findings.append
    stage_names: set[str] = set()
    seen_from = False
    stage_from_line = 0
    last_user: tuple[str, int] | None = None
    counts: dict[str, int] = {}
    pip_no_cache = False
    for ins in instructions:
        kw, args = ins.keyword, ins.args
        if kw not in KNOWN:
            add(book.make("DF017", f"unknown instruction {kw!r}", ins.line))
            continue
        if not seen_from and kw not in ("FROM", "ARG"):
            add(book.make("DF018", f"{kw} appears before the first FROM", ins.line))
        if kw == "FROM":
            seen_from = True
            result.stages += 1
            stage_from_line = ins.line
            last_user, counts, pip_no_cache = None, {}, False
            _check_from(args, ins.line, stage_names, book, add)
            continue
        counts[kw] = counts.get(kw, 0) + 1
        if kw == "RUN":
            _check_run(args + "\n" + ins.body, ins.line, pip_no_cache, book, add)
        elif kw in ("CMD", "ENTRYPOINT"):
            if counts[kw] == 2:
                add(book.make("DF010" if kw == "CMD" else "DF011", f"second {kw} in this stage", ins.line))
            if not args.lstrip().startswith("["):
                add(book.make("DF012", f"{kw} {_short(args)} uses the shell form", ins.line))
        elif kw == "MAINTAINER":
            add(book.make("DF013", "MAINTAINER is deprecated", ins.line))
        elif kw in ("ENV", "ARG"):
            for name, has_value in _variables(kw, args):
                if name.upper() == "PIP_NO_CACHE_DIR":
                    pip_no_cache = True
                if SECRET_NAME.search(name) and not POINTER_SUFFIX.search(name):
                    if kw == "ENV" and has_value:
                        add(book.make("DF014", f"ENV {name} stores a secret-looking value in the image", ins.line))
                    else:
                        add(
                            book.make(
                                "DF014", f"{kw} {name} ends up in the image history", ins.line, severity="warning"
                            )
                        )
        elif kw == "EXPOSE":
            for token in args.split():
                if not _valid_port(token):
                    add(book.make("DF015", f"EXPOSE {token} is not a valid port (1-65535[/tcp|/udp])", ins.line))
        elif kw == "ADD":
            _check_add(args, ins.line, book, add)
        elif kw == "USER":
            last_user = (args.split()[0] if args.split() else "", ins.line)
    if require_non_root and seen_from:
        if last_user is None:
            add(book.make("DF007", "the final stage has no USER instruction, so it runs as root", stage_from_line))
        elif last_user[0] in ROOT_USERS:
            add(book.make("DF007", f"the final stage switches to USER {last_user[0]}", last_user[1]))
    return result


def _check_from(args: str, line: int, stage_names: set[str], book: RuleBook, add) -> None:
    words = [w for w in args.split() if not w.startswith("--")]
    if not words:
        add(book.make("DF017", "FROM without an image", line))
        return
    image = words[0]
    if len(words) >= 3 and words[1].lower() == "as":
        stage_names.add(words[2].lower())
    if image.lower() in stage_names or image == "scratch" or "$" in image or "@" in image:
        return  # earlier stage, empty image, unresolved build arg, or pinned by digest
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        add(book.make("DF001", f"FROM {image} has no tag (it means :latest)", line))
    elif name.rsplit(":", 1)[1] == "latest":
        add(book.make("DF001", f"FROM {image} uses the moving :latest tag", line))


def _check_run(script: str, line: int, pip_no_cache: bool, book: RuleBook, add) -> None:
    commands = [c.strip() for c in SHELL_SPLIT.split(script) if c.strip()]
    for cmd in commands:
        words = cmd.split()
        if words[0] == "cd":
            add(book.make("DF006", f"`{_short(cmd)}` in RUN; use WORKDIR", line))
        if "sudo" in words[:2]:
            add(book.make("DF008", f"`{_short(cmd)}` uses sudo", line))
        if APT_INSTALL.search(cmd):
            if "--no-install-recommends" not in cmd and "Install-Recommends=false" not in cmd:
                add(book.make("DF002", f"`{_short(cmd)}` lacks --no-install-recommends", line))
            if not re.search(r"(?:^|\s)(-[a-zA-Z]*y[a-zA-Z]*|--yes|--assume-yes)(?:\s|$)", cmd):
                add(book.make("DF004", f"`{_short(cmd)}` lacks -y", line))
        if re.search(r"\bpip3?\s+install\b|\bpython3?\s+-m\s+pip\s+install\b", cmd):
            if "--no-cache-dir" not in cmd and not pip_no_cache:
                add(book.make("DF009", f"`{_short(cmd)}` keeps pip's cache", line))
        if re.search(r"\bapk\s+(?:-\S+\s+)*add\b", cmd) and "--no-cache" not in cmd:
            add(book.make("DF016", f"`{_short(cmd)}` keeps apk's cache", line))
    if re.search(r"\bapt(?:-get)?\s+(?:-\S+\s+)*update\b", script) and APT_INSTALL.search(script):
        if not re.search(r"rm\s+-[a-z]*r[a-z]*f?\s+.*?/var/lib/apt/lists", script):
            add(book.make("DF003", "apt-get update without `rm -rf /var/lib/apt/lists/*` in the same RUN", line))
    if re.search(r"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z|da)?sh\b", script):
        add(book.make("DF019", "a download is piped straight into a shell", line))


def _check_add(args: str, line: int, book: RuleBook, add) -> None:
    if args.lstrip().startswith("["):
        try:
            words = [str(w) for w in json.loads(args)]
        except ValueError:
            words = args.split()
    else:
        words = [w for w in args.split() if not w.startswith("--")]
    if "<<" in args:
        return  # heredoc source: inline content, no local file involved
    for source in words[:-1]:
        if re.match(r"^(https?://|git@|git://)", source) or ARCHIVE.search(source):
            continue
        add(book.make("DF005", f"ADD {source}: use COPY for local files", line))


def _variables(keyword: str, args: str) -> list[tuple[str, bool]]:
    """(name, has a value) for each variable an ENV or ARG line sets."""
    if keyword == "ENV" and "=" not in args.split(" ", 1)[0]:
        name = args.split(" ", 1)[0]  # legacy `ENV NAME value` form
        return [(name, len(args.split(" ", 1)) > 1)] if name else []
    out = []
    for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)(=(\"[^\"]*\"|'[^']*'|\S*))?", args):
        out.append((m.group(1), bool(m.group(3))))
        if keyword == "ARG":
            break  # ARG declares one name
    return out


def _valid_port(token: str) -> bool:
    if "$" in token:
        return True  # resolved at build time
    port, _, proto = token.partition("/")
    if proto and proto.lower() not in ("tcp", "udp", "sctp"):
        return False
    bounds = port.split("-", 1)
    if not all(b.isdigit() and 1 <= int(b) <= 65535 for b in bounds):
        return False
    return len(bounds) == 1 or int(bounds[0]) <= int(bounds[1])


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def combine(own: list[Finding], engine: list[Finding], engine_parsed: bool) -> list[Finding]:
    """hadolint's findings plus Reynolds' policy rules; Reynolds' own parser alone when hadolint could not
    read the file (heredocs, which it does not parse, or an unknown instruction)."""
    if not engine_parsed:
        return sorted(own, key=lambda f: f.line or 0)
    return sorted([*engine, *(f for f in own if f.rule in POLICY_RULES)], key=lambda f: f.line or 0)
