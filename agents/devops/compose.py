"""Compose file validation: the checks CP001-CP019 described in knowledge/compose-rules.yaml, including
the team's resource and healthcheck policies (context/infrastructure/resource-limits.json, monitoring.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from agents.devops import schemas, units
from agents.devops.findings import Finding, RuleBook
from agents.devops.interpolate import Interpolated
from agents.devops.yamlmap import LineMap


class ComposeFinding(Finding):
    service: str | None = Field(None, description="the service the finding is about (None: the whole file)")


@dataclass(frozen=True)
class Published:
    service: str
    host_ip: str
    port: int
    protocol: str
    line: int | None


def validate(
    data: Any,
    lines: LineMap,
    base_dir: Path,
    book: RuleBook,
    limits: dict[str, Any] | None = None,
    monitoring: dict[str, Any] | None = None,
) -> list[ComposeFinding]:
    """Findings for a parsed Compose document whose file lives in ``base_dir``."""
    out: list[ComposeFinding] = []

    def add(rule: str, message: str, service: str | None = None, *path: Any, severity: str | None = None) -> None:
        where = ("services", service, *path) if service else path
        out.append(
            book.make(rule, message, lines.line(*where), model=ComposeFinding, service=service, severity=severity)
        )

    if not isinstance(data, dict):
        add("CP003", "the file is not a mapping with a `services` key")
        return out
    if "version" in data:
        add("CP002", f"top-level `version: {data['version']}` is obsolete and ignored", None, "version")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        add("CP003", "no `services` defined", None, "services")
        return out
    declared = {kind: _names(data.get(kind)) for kind in ("volumes", "networks", "secrets", "configs")}
    _check_declared_files(data, base_dir, add)
    healthy = {name: _has_healthcheck(svc, base_dir) for name, svc in services.items() if isinstance(svc, dict)}
    published: list[Published] = []
    for name, svc in services.items():
        if not isinstance(svc, dict):
            add("CP019", f"service {name!r} is not a mapping", name)
            continue
        _check_source(name, svc, base_dir, add)
        _check_references(name, svc, declared, add)
        replicas = _replicas(svc)
        if replicas > 1 and svc.get("container_name"):
            add(
                "CP012",
                f"{replicas} replicas cannot share container_name {svc['container_name']!r}",
                name,
                "container_name",
            )
        if not healthy[name]:
            add("CP011", f"service {name!r} has no healthcheck", name)
        _check_depends_on(name, svc, services, healthy, add)
        for group in _ports(name, svc, lines, add):
            # Replicas of one service need a host port each: a range at least as wide as the replica count.
            if replicas > 1 and group and len(group) < replicas:
                message = f"{replicas} replicas cannot share host port {group[0].port}/{group[0].protocol}"
                add("CP010", message, name, "ports")
            published.extend(group)
        _check_resources(name, svc, replicas, limits or {}, add)
        _check_healthcheck_timing(name, svc, (monitoring or {}).get("healthchecks", {}), add)
    _check_port_clashes(published, out, book)
    return out


def spec_findings(done: Interpolated, lines: LineMap, book: RuleBook) -> list[ComposeFinding]:
    """Variables left unset or required (CP021, CP022) and Compose Specification schema violations (CP020)
    in the interpolated document: wrong types are findings here, and the checks below skip them."""
    out: list[ComposeFinding] = []

    def add(rule: str, path: tuple[Any, ...], message: str) -> None:
        service = str(path[1]) if len(path) > 1 and path[0] == "services" else None
        out.append(book.make(rule, message, lines.line(*path), model=ComposeFinding, service=service))

    for path, names in done.unset.items():
        add("CP021", path, f"{_dotted(path)}: {', '.join(sorted(set(names)))} not set; Compose uses an empty string")
    for path, messages in done.required.items():
        add("CP022", path, f"{_dotted(path)}: {'; '.join(messages)}")
    for path, message in schemas.problems(done.data, schemas.COMPOSE) if isinstance(done.data, dict) else []:
        add("CP020", path, f"{_dotted(path) or 'the file'}: {message}")
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _items(value: Any) -> list[Any]:
    """A list-valued key's items; any other type is a schema finding (CP020) and yields nothing here."""
    return value if isinstance(value, list) else []


def _names(section: Any) -> set[str]:
    return set(section) if isinstance(section, dict) else set()


def _check_declared_files(data: dict, base_dir: Path, add) -> None:
    for kind in ("secrets", "configs"):
        for name, spec in (data.get(kind) or {}).items() if isinstance(data.get(kind), dict) else []:
            if isinstance(spec, dict) and isinstance(spec.get("file"), str) and not spec.get("external"):
                if not (base_dir / spec["file"]).exists():
                    add("CP015", f"{kind[:-1]} {name!r} reads {spec['file']!r}, which does not exist", None, kind, name)


def _check_source(name: str, svc: dict, base_dir: Path, add) -> None:
    build = svc.get("build")
    if not svc.get("image") and not build:
        add("CP004", f"service {name!r} has neither `image` nor `build`", name)
        return
    if not build:
        return
    context = build if isinstance(build, str) else build.get("context", ".") if isinstance(build, dict) else None
    if not isinstance(context, str):
        add("CP019", f"service {name!r} has a malformed `build`", name, "build")
        return
    if re.match(r"^(https?://|git@|git://|ssh://)", context) or "$" in context:
        return  # remote or interpolated context: nothing local to check
    ctx = base_dir / context
    if not ctx.is_dir():
        add("CP005", f"build context {context!r} does not exist", name, "build")
        return
    dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
    if isinstance(build, dict) and "dockerfile_inline" in build:
        return
    if isinstance(dockerfile, str) and "$" not in dockerfile and not (ctx / dockerfile).is_file():
        add("CP005", f"Dockerfile {dockerfile!r} not found in build context {context!r}", name, "build")


def _check_references(name: str, svc: dict, declared: dict[str, set[str]], add) -> None:
    for index, volume in enumerate(_items(svc.get("volumes"))):
        source = _named_volume(volume)
        if source and source not in declared["volumes"]:
            add("CP006", f"volume {source!r} is not declared under top-level `volumes`", name, "volumes", index)
    if "network_mode" not in svc:
        networks = svc.get("networks") or []
        for network in networks if isinstance(networks, list | dict) else []:
            if network != "default" and network not in declared["networks"]:
                add("CP007", f"network {network!r} is not declared under top-level `networks`", name, "networks")
    for kind, rule in (("secrets", "CP008"), ("configs", "CP009")):
        for index, item in enumerate(_items(svc.get(kind))):
            source = item.get("source") if isinstance(item, dict) else item
            if isinstance(source, str) and source not in declared[kind]:
                add(rule, f"{kind[:-1]} {source!r} is not declared under top-level `{kind}`", name, kind, index)


def _named_volume(volume: Any) -> str | None:
    """The named volume a service mount uses, or None for binds, tmpfs and anonymous volumes."""
    if isinstance(volume, dict):
        source = volume.get("source")
        return source if volume.get("type", "volume") == "volume" and isinstance(source, str) else None
    if not isinstance(volume, str) or ":" not in volume:
        return None
    source = volume.split(":", 1)[0]
    if not source or source[0] in "/.~$" or re.match(r"^[A-Za-z]$", source):  # bind, variable or C:\ path
        return None
    return source


def _has_healthcheck(svc: dict, base_dir: Path) -> bool:
    check = svc.get("healthcheck")
    if isinstance(check, dict):
        return not check.get("disable") and check.get("test") not in (["NONE"], "NONE")
    # No healthcheck in the file: a local build may still define one in its Dockerfile.
    build = svc.get("build")
    context = build if isinstance(build, str) else build.get("context", ".") if isinstance(build, dict) else None
    if isinstance(context, str):
        name = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        dockerfile = base_dir / context / str(name)
        if dockerfile.is_file() and dockerfile.stat().st_size < 1_000_000:
            text = dockerfile.read_text(errors="replace")
            return bool(re.search(r"^\s*HEALTHCHECK\s+(?!NONE)", text, re.IGNORECASE | re.MULTILINE))
    return False


def _check_depends_on(name: str, svc: dict, services: dict, healthy: dict[str, bool], add) -> None:
    depends = svc.get("depends_on") or []
    if isinstance(depends, str):
        depends = [depends]  # not valid Compose (CP020), but the service it names is still checked
    items = depends.items() if isinstance(depends, dict) else ((d, {}) for d in _items(depends))
    for target, spec in items:
        if not isinstance(target, str):
            continue
        if target not in services:
            add("CP014", f"depends_on {target!r}, which is not a service in this file", name, "depends_on")
        elif isinstance(spec, dict) and spec.get("condition") == "service_healthy" and not healthy.get(target):
            add(
                "CP013",
                f"waits for {target!r} to be healthy, but {target!r} has no healthcheck",
                name,
                "depends_on",
                target,
            )


def _replicas(svc: dict) -> int:
    deploy = svc.get("deploy") if isinstance(svc.get("deploy"), dict) else {}
    value = deploy.get("replicas", svc.get("scale", 1))
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _ports(name: str, svc: dict, lines: LineMap, add) -> list[list[Published]]:
    """Fixed host ports a service publishes, one group per port entry (ephemeral and container-only
    ports bind nothing fixed)."""
    out: list[list[Published]] = []
    for index, spec in enumerate(_items(svc.get("ports"))):
        line = lines.line("services", name, "ports", index)
        try:
            out.append([Published(name, ip, port, proto, line) for ip, port, proto in _parse_port(spec)])
        except ValueError as err:
            add("CP019", f"port {spec!r}: {err}", name, "ports", index)
    return out


def _parse_port(spec: Any) -> list[tuple[str, int, str]]:
    if isinstance(spec, int) and not isinstance(spec, bool):
        return []  # container port only
    if isinstance(spec, dict):
        published = spec.get("published")
        if published in (None, ""):
            return []
        return [(str(spec.get("host_ip") or "0.0.0.0"), p, spec.get("protocol", "tcp")) for p in _range(str(published))]
    if not isinstance(spec, str):
        raise ValueError("expected a string, number or mapping")
    if "$" in spec:
        return []  # interpolated at run time
    text, _, proto = spec.partition("/")
    ip = "0.0.0.0"
    if text.startswith("["):  # [::1]:8080:80
        ip, _, text = text[1:].partition("]:")
    parts = text.split(":")
    if len(parts) == 3:
        ip, host = parts[0] or ip, parts[1]
    elif len(parts) == 2:
        host = parts[0]
    elif len(parts) == 1:
        _range(parts[0])
        return []
    else:
        raise ValueError("expected [ip:]host:container[/protocol]")
    _range(parts[-1])
    return [(ip, p, proto or "tcp") for p in _range(host)] if host else []


def _range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        raise ValueError(f"{text!r} is not a port number or range")
    ports = list(range(int(low), int(high or low) + 1))
    if not ports or not all(1 <= p <= 65535 for p in ports):
        raise ValueError(f"{text!r} is outside 1-65535")
    return ports


def _check_port_clashes(published: list[Published], out: list[ComposeFinding], book: RuleBook) -> None:
    reported: set[tuple[str, int, str]] = set()
    for i, a in enumerate(published):
        for b in published[i + 1 :]:
            if a.service == b.service or (a.port, a.protocol) != (b.port, b.protocol):
                continue
            if a.host_ip != b.host_ip and "0.0.0.0" not in (a.host_ip, b.host_ip):
                continue
            key = (b.service, b.port, b.protocol)
            if key not in reported:
                reported.add(key)
                message = f"host port {b.port}/{b.protocol} is also published by service {a.service!r}"
                out.append(book.make("CP010", message, b.line, model=ComposeFinding, service=b.service))


def _check_resources(name: str, svc: dict, replicas: int, policy: dict[str, Any], add) -> None:
    if not policy:
        return
    deploy = svc.get("deploy") if isinstance(svc.get("deploy"), dict) else {}
    limits = ((deploy.get("resources") or {}).get("limits") or {}) if isinstance(deploy.get("resources"), dict) else {}
    cpus = limits.get("cpus", svc.get("cpus"))
    memory = limits.get("memory", svc.get("mem_limit"))
    if cpus is None and memory is None:
        if policy.get("require_limits"):
            add("CP016", f"service {name!r} sets no CPU or memory limit", name)
        return
    ceiling = policy.get("per_service_max", {})
    try:
        if cpus is not None and "cpus" in ceiling and float(cpus) > float(ceiling["cpus"]):
            add("CP017", f"cpus {cpus} is above the policy maximum {ceiling['cpus']}", name, "deploy")
    except (TypeError, ValueError):
        add("CP019", f"cpus {cpus!r} is not a number", name, "deploy")
    asked, allowed = units.size_bytes(memory), units.size_bytes(ceiling.get("memory"))
    if memory is not None and asked is None:
        add("CP019", f"memory limit {memory!r} is not a size", name, "deploy")
    elif asked and allowed and asked > allowed:
        add("CP017", f"memory {memory} is above the policy maximum {ceiling['memory']}", name, "deploy")
    if "replicas" in ceiling and replicas > int(ceiling["replicas"]):
        add("CP017", f"{replicas} replicas is above the policy maximum {ceiling['replicas']}", name, "deploy")


def _check_healthcheck_timing(name: str, svc: dict, policy: dict[str, Any], add) -> None:
    check = svc.get("healthcheck")
    if not policy or not isinstance(check, dict) or check.get("disable"):
        return
    for key, limit_key in (("interval", "max_interval_s"), ("timeout", "max_timeout_s")):
        if key in check and limit_key in policy:
            seconds = units.duration_s(check[key])
            if seconds is None:
                add("CP019", f"healthcheck {key} {check[key]!r} is not a duration", name, "healthcheck", key)
            elif seconds > float(policy[limit_key]):
                add("CP018", f"healthcheck {key} {check[key]} exceeds {policy[limit_key]}s", name, "healthcheck", key)
    retries = check.get("retries")
    if isinstance(retries, int) and "min_retries" in policy and retries < int(policy["min_retries"]):
        add("CP018", f"healthcheck retries {retries} is below {policy['min_retries']}", name, "healthcheck", "retries")
