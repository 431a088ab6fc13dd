"""What changed between two versions of a solution package: version, managed flag, publisher, root
components, components (added, removed, changed by XML fingerprint) and missing dependencies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents.platform.solution import Component, SolutionSummary, parse_version


class VersionChange(BaseModel):
    old: str
    new: str
    direction: Literal["increased", "decreased", "unchanged", "not comparable"]


class ComponentRef(BaseModel):
    kind: str
    name: str


class ComponentsDiff(BaseModel):
    added: list[ComponentRef]
    removed: list[ComponentRef]
    changed: list[ComponentRef] = Field(description="same kind and name, different XML")
    unchanged: int


class SolutionDiff(BaseModel):
    old_path: str
    new_path: str
    same_solution: bool = Field(description="both packages carry the same UniqueName")
    unique_names: list[str]
    version: VersionChange
    managed_changed: bool
    managed: dict[str, bool] = Field(description="old and new managed flag")
    publisher_changed: bool
    root_components_added: list[ComponentRef]
    root_components_removed: list[ComponentRef]
    components: ComponentsDiff
    dependencies_added: list[str] = Field(description="missing dependencies only the new package declares")
    dependencies_removed: list[str] = Field(description="missing dependencies the new package no longer has")
    summary: str


def diff(old: SolutionSummary, new: SolutionSummary) -> SolutionDiff:
    version = _version(old.version, new.version)
    components = _components(old.components, new.components)
    old_roots, new_roots = _roots(old), _roots(new)
    old_deps, new_deps = _dependencies(old), _dependencies(new)
    result = SolutionDiff(
        old_path=old.path,
        new_path=new.path,
        same_solution=old.unique_name == new.unique_name,
        unique_names=[old.unique_name, new.unique_name],
        version=version,
        managed_changed=old.managed != new.managed,
        managed={"old": old.managed, "new": new.managed},
        publisher_changed=(old.publisher.unique_name, old.publisher.customization_prefix)
        != (new.publisher.unique_name, new.publisher.customization_prefix),
        root_components_added=[_ref(k) for k in sorted(new_roots - old_roots)],
        root_components_removed=[_ref(k) for k in sorted(old_roots - new_roots)],
        components=components,
        dependencies_added=sorted(new_deps - old_deps),
        dependencies_removed=sorted(old_deps - new_deps),
        summary="",
    )
    result.summary = _sentence(result)
    return result


def _version(old: str, new: str) -> VersionChange:
    a, b = parse_version(old), parse_version(new)
    if a is None or b is None:
        direction = "not comparable"
    else:
        direction = "increased" if b > a else "decreased" if b < a else "unchanged"
    return VersionChange(old=old, new=new, direction=direction)


def _key(component: Component) -> tuple[str, str]:
    return component.kind, component.name.lower()


def _ref(key: tuple[str, str]) -> ComponentRef:
    return ComponentRef(kind=key[0], name=key[1])


def _components(old: list[Component], new: list[Component]) -> ComponentsDiff:
    before = {_key(c): c for c in old}
    after = {_key(c): c for c in new}
    common = before.keys() & after.keys()
    changed = sorted(k for k in common if before[k].fingerprint != after[k].fingerprint)
    return ComponentsDiff(
        added=[ComponentRef(kind=after[k].kind, name=after[k].name) for k in sorted(after.keys() - before.keys())],
        removed=[ComponentRef(kind=before[k].kind, name=before[k].name) for k in sorted(before.keys() - after.keys())],
        changed=[ComponentRef(kind=after[k].kind, name=after[k].name) for k in changed],
        unchanged=len(common) - len(changed),
    )


def _roots(summary: SolutionSummary) -> set[tuple[str, str]]:
    return {(rc.kind, rc.schema_name or rc.id or "?") for rc in summary.root_components}


def _dependencies(summary: SolutionSummary) -> set[str]:
    return {
        f"{d.required.kind} {d.required.schema_name or d.required.id or d.required.display_name}"
        for d in summary.missing_dependencies
    }


def _sentence(d: SolutionDiff) -> str:
    parts = [f"version {d.version.old} -> {d.version.new} ({d.version.direction})"]
    c = d.components
    parts.append(f"{len(c.added)} added, {len(c.removed)} removed, {len(c.changed)} changed components")
    if d.managed_changed:
        parts.append(f"managed flag {d.managed['old']} -> {d.managed['new']}")
    if d.dependencies_added or d.dependencies_removed:
        parts.append(f"{len(d.dependencies_added)} new / {len(d.dependencies_removed)} resolved missing dependencies")
    if not d.same_solution:
        parts.append(f"different solutions ({d.unique_names[0]} vs {d.unique_names[1]})")
    return "; ".join(parts)
