"""What a solution package contains: ``solution.xml`` (the manifest) and ``customizations.xml`` (the
components) parsed into a ``SolutionSummary``. The mapping from XML element names to component kinds
is data, ``knowledge/component-types.yaml``, passed in as ``ComponentTypes``."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents.platform.package import PackageFiles
from agents.runtime.errors import ToolError

# major.minor[.build[.revision]]: Dataverse accepts two to four numeric parts (missing ones count as 0)
VERSION = re.compile(r"^\d+\.\d+(?:\.\d+){0,2}$")
MANAGED_FLAGS = {"0": "unmanaged", "1": "managed", "2": "both"}


class LocalizedName(BaseModel):
    language_code: int | None
    text: str


class Publisher(BaseModel):
    unique_name: str | None
    display_name: str | None
    customization_prefix: str | None
    option_value_prefix: int | None


class RootComponent(BaseModel):
    type: int | None = Field(description="component type code from solution.xml")
    kind: str
    schema_name: str | None = None
    id: str | None = None
    behavior: int | None = Field(None, description="0 include subcomponents, 1 do not, 2 shell only")


class DependencyEnd(BaseModel):
    type: int | None
    kind: str
    schema_name: str | None = None
    display_name: str | None = None
    id: str | None = None
    solution: str | None = Field(None, description="the solution that provides it, when the manifest says")


class MissingDependency(BaseModel):
    required: DependencyEnd
    dependent: DependencyEnd | None = None


class Component(BaseModel):
    kind: str
    name: str
    display_name: str | None = None
    id: str | None = None
    connector: str | None = Field(None, description="connector id, for connection references")
    fingerprint: str = Field(description="hash of the component's XML, to tell changed components apart")


class SolutionSummary(BaseModel):
    """Everything inspect_solution reports about one package."""

    path: str
    source: Literal["zip", "folder"]
    layout: Literal["export", "packager"]
    unique_name: str
    display_name: str | None
    localized_names: list[LocalizedName]
    version: str
    version_valid: bool = Field(description="numeric major.minor[.build[.revision]]")
    managed: bool
    managed_flag: str = Field(description="unmanaged | managed | both, as declared in the manifest")
    publisher: Publisher
    root_components: list[RootComponent]
    missing_dependencies: list[MissingDependency]
    customizations_present: bool
    components: list[Component]
    component_counts: dict[str, int]
    languages: list[int]
    file_count: int
    uncompressed_bytes: int
    notes: list[str] = Field(default_factory=list, description="sections not understood, oddities")


class SectionSpec(BaseModel):
    kind: str
    item: str
    name: str
    display: str | None = None
    id: str | None = None
    connector: str | None = None
    prefixed: bool = False


class ComponentTypes(BaseModel):
    """The parsed ``component-types.yaml``."""

    root_component_types: dict[int, str]
    sections: dict[str, SectionSpec]

    def kind_of(self, code: int | None) -> str:
        if code is None:
            return "unknown"
        return self.root_component_types.get(code, f"type-{code}")

    def section(self, tag: str) -> SectionSpec | None:
        lowered = tag.lower()
        for name, spec in self.sections.items():
            if name.lower() == lowered:
                return spec
        return None

    def prefixed_kinds(self) -> set[str]:
        return {spec.kind for spec in self.sections.values() if spec.prefixed}


def parse_xml(data: bytes, label: str) -> ET.Element:
    """Parse one document; DTDs are refused outright (solution files never have one; entity tricks do)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ToolError(f"{label} declares a DTD or entities, which solution files never do; refusing it")
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        raise ToolError(f"{label} is not well-formed XML: {err}") from err


def summarize(path: str, files: PackageFiles, types: ComponentTypes) -> SolutionSummary:
    """Build the summary of a package whose files were read by ``package.open_package``."""
    root = parse_xml(files.manifest, "solution.xml")
    if _local(root.tag) != "ImportExportXml":
        raise ToolError(f"solution.xml has root element <{_local(root.tag)}>, expected <ImportExportXml>")
    manifest = _child(root, "SolutionManifest")
    if manifest is None:
        raise ToolError("solution.xml has no <SolutionManifest>: not a solution manifest")
    unique_name = _text(manifest, "UniqueName")
    if not unique_name:
        raise ToolError("solution.xml has no <UniqueName> in its <SolutionManifest>")
    names = _localized_names(manifest)
    version = _text(manifest, "Version") or ""
    managed_raw = _text(manifest, "Managed") or "0"
    notes: list[str] = []
    if managed_raw not in MANAGED_FLAGS:
        notes.append(f"<Managed> is {managed_raw!r}; expected 0 (unmanaged), 1 (managed) or 2")

    components: list[Component] = []
    languages: list[int] = []
    if files.customizations is not None:
        custom_root = parse_xml(files.customizations, "customizations.xml")
        components, languages, section_notes = _components(custom_root, types)
        notes.extend(section_notes)
    else:
        notes.append("no customizations.xml in the package: component inventory comes from RootComponents only")
    separate, separate_notes = _component_files(files.component_files, types)
    components.extend(separate)
    notes.extend(separate_notes)

    return SolutionSummary(
        path=path,
        source=files.source,  # type: ignore[arg-type]
        layout=files.layout,  # type: ignore[arg-type]
        unique_name=unique_name,
        display_name=names[0].text if names else None,
        localized_names=names,
        version=version,
        version_valid=bool(VERSION.match(version)),
        managed=managed_raw == "1",
        managed_flag=MANAGED_FLAGS.get(managed_raw, managed_raw),
        publisher=_publisher(_child(manifest, "Publisher")),
        root_components=_root_components(manifest, types),
        missing_dependencies=_missing_dependencies(manifest, types),
        customizations_present=files.customizations is not None,
        components=components,
        component_counts=dict(sorted(Counter(c.kind for c in components).items())),
        languages=languages,
        file_count=len(files.members),
        uncompressed_bytes=files.total_bytes,
        notes=notes,
    )


def parse_version(version: str) -> tuple[int, ...] | None:
    """``"1.2.3.4"`` -> (1, 2, 3, 4), ``"1.2"`` -> (1, 2, 0, 0); None when it is not 2-4 numeric parts."""
    if not VERSION.match(version):
        return None
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name] if element is not None else []


def _text(element: ET.Element | None, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _localized_names(element: ET.Element | None) -> list[LocalizedName]:
    return [
        LocalizedName(language_code=_int(n.get("languagecode")), text=n.get("description", ""))
        for n in _children(_child(element, "LocalizedNames"), "LocalizedName")
    ]


def _publisher(element: ET.Element | None) -> Publisher:
    names = _localized_names(element)
    return Publisher(
        unique_name=_text(element, "UniqueName"),
        display_name=names[0].text if names else None,
        customization_prefix=_text(element, "CustomizationPrefix"),
        option_value_prefix=_int(_text(element, "CustomizationOptionValuePrefix")),
    )


def _root_components(manifest: ET.Element, types: ComponentTypes) -> list[RootComponent]:
    result = []
    for rc in _children(_child(manifest, "RootComponents"), "RootComponent"):
        code = _int(rc.get("type"))
        result.append(
            RootComponent(
                type=code,
                kind=types.kind_of(code),
                schema_name=rc.get("schemaName"),
                id=rc.get("id"),
                behavior=_int(rc.get("behavior")),
            )
        )
    return result


def _dependency_end(element: ET.Element, types: ComponentTypes) -> DependencyEnd:
    code = _int(element.get("type"))
    return DependencyEnd(
        type=code,
        kind=types.kind_of(code),
        schema_name=element.get("schemaName"),
        display_name=element.get("displayName"),
        id=element.get("id"),
        solution=element.get("solution"),
    )


def _missing_dependencies(manifest: ET.Element, types: ComponentTypes) -> list[MissingDependency]:
    result = []
    for md in _children(_child(manifest, "MissingDependencies"), "MissingDependency"):
        required = _child(md, "Required")
        if required is None:
            continue
        dependent = _child(md, "Dependent")
        result.append(
            MissingDependency(
                required=_dependency_end(required, types),
                dependent=_dependency_end(dependent, types) if dependent is not None else None,
            )
        )
    return result


def _lookup(item: ET.Element, spec: str | None) -> str | None:
    """Resolve a "@Attr" / "Child" / "Child/@Attr" spec (see component-types.yaml) against ``item``."""
    if not spec:
        return None
    if spec.startswith("@"):
        value = item.get(spec[1:])
    elif "/@" in spec:
        child_name, attribute = spec.split("/@", 1)
        child = _child(item, child_name)
        value = child.get(attribute) if child is not None else None
    else:
        value = _text(item, spec)
    return value.strip() if value and value.strip() else None


def _fingerprint(element: ET.Element) -> str:
    # canonical form, so attribute order or whitespace between elements does not count as a change
    canonical = ET.canonicalize(ET.tostring(element, encoding="unicode"), strip_text=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _components(root: ET.Element, types: ComponentTypes) -> tuple[list[Component], list[int], list[str]]:
    components: list[Component] = []
    languages: list[int] = []
    notes: list[str] = []
    for section in root:
        tag = _local(section.tag)
        if tag == "Languages":
            languages = [code for lang in section if (code := _int((lang.text or "").strip())) is not None]
            continue
        spec = types.section(tag)
        if spec is None:
            if len(section):
                notes.append(f"customizations.xml section <{tag}> ({len(section)} items) is not inventoried")
            continue
        for index, item in enumerate(_children(section, spec.item), start=1):
            name = _lookup(item, spec.name)
            if name is None:
                notes.append(f"<{tag}> item {index} has no name ({spec.name}); listed as unnamed")
                name = f"<unnamed {spec.kind} {index}>"
            components.append(
                Component(
                    kind=spec.kind,
                    name=name,
                    display_name=_lookup(item, spec.display),
                    id=_lookup(item, spec.id),
                    connector=_lookup(item, spec.connector),
                    fingerprint=_fingerprint(item),
                )
            )
    return components, languages, notes


def _component_files(parts: list[tuple[str, bytes]], types: ComponentTypes) -> tuple[list[Component], list[str]]:
    """Components the packager layout keeps in files of their own, told apart by their root element
    (the same item names as customizations.xml sections); other XML files (forms, ribbons) are skipped."""
    by_item = {spec.item.lower(): spec for spec in types.sections.values()}
    components: list[Component] = []
    notes: list[str] = []
    for name, data in parts:
        try:
            root = parse_xml(data, name)
        except ToolError as err:
            notes.append(f"{name} not inventoried: {err}")
            continue
        spec = by_item.get(_local(root.tag).lower())
        if spec is not None:
            components.append(_component(root, spec, fallback=PurePosixPath(name).stem))
    return components, notes


def _component(item: ET.Element, spec: SectionSpec, fallback: str) -> Component:
    return Component(
        kind=spec.kind,
        name=_lookup(item, spec.name) or fallback,
        display_name=_lookup(item, spec.display),
        id=_lookup(item, spec.id),
        connector=_lookup(item, spec.connector),
        fingerprint=_fingerprint(item),
    )


def load_component_types(raw: Any) -> ComponentTypes:
    """Validate the knowledge file's content; a broken file is a clear error, not a crash."""
    if not isinstance(raw, dict):
        raise ToolError("knowledge file component-types.yaml is missing or not a mapping")
    try:
        return ComponentTypes.model_validate(raw)
    except ValueError as err:
        raise ToolError(f"knowledge file component-types.yaml is invalid: {err}") from err
