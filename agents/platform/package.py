"""Reading a solution package safely: a ``.zip`` export or a folder it was unpacked into.

Owns the limits (archive size, member count, XML size, compression ratio) and refuses archives
whose member names would escape a folder if extracted. Nothing is extracted to disk: only the
manifest (``solution.xml``) and ``customizations.xml`` are read into memory, each under a cap.
Two layouts are understood: an export (both files at the root) and the SolutionPackager layout
of ``pac solution unpack`` (both under ``Other/``). The packager keeps each component in a file of its
own (``Entities/<name>/Entity.xml``, ``Workflows/*.xml``, ``CanvasApps/*.meta.xml``,
``environmentvariabledefinitions/*/environmentvariabledefinition.xml`` ...): those XML files are read
too (each under the XML cap, together under ``MAX_COMPONENT_FILES``), for the caller to inventory.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agents.runtime.errors import PathOutsideWorkspace, ToolError
from agents.runtime.layers import resolve_inside

# lower-cased relative paths, per layout, of (manifest, customizations)
LAYOUTS = {
    "export": ("solution.xml", "customizations.xml"),
    "packager": ("other/solution.xml", "other/customizations.xml"),
}
CHUNK = 1 << 16
MAX_COMPONENT_FILES = 5000
# a member this small cannot be a meaningful bomb whatever its ratio (empty sections compress well)
RATIO_FLOOR_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_archive_bytes: int
    max_members: int
    max_xml_bytes: int
    max_ratio: int


@dataclass(frozen=True)
class PackageFiles:
    """The two XML documents of a package and an inventory of everything else in it."""

    source: str  # "zip" | "folder"
    layout: str  # "export" | "packager"
    manifest: bytes
    customizations: bytes | None
    members: list[str]
    total_bytes: int
    component_files: list[tuple[str, bytes]] = field(default_factory=list)  # packager layout: (name, XML)


def component_members(layout: str, members: list[str]) -> list[str]:
    """The packager layout's per-component XML files: every .xml outside Other/ (sorted, capped)."""
    if layout != "packager":
        return []
    found = sorted(m for m in members if m.lower().endswith(".xml") and not m.lower().startswith("other/"))
    if len(found) > MAX_COMPONENT_FILES:
        raise ToolError(f"{len(found)} component files, over the limit of {MAX_COMPONENT_FILES}")
    return [m for m in found if PurePosixPath(m).name != "[Content_Types].xml"]


def open_package(path: Path, limits: Limits) -> PackageFiles:
    """Read the package at ``path`` (already confined to the workspace) or raise ToolError saying why."""
    if path.is_dir():
        return _read_folder(path, limits)
    if not path.is_file():
        raise ToolError(f"{path.name!r} is neither a file nor a folder")
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise ToolError(f"{path.name} is {size} bytes, over the {limits.max_archive_bytes}-byte limit for a package")
    if not zipfile.is_zipfile(path):
        raise ToolError(f"{path.name} is not a zip archive; a solution package is a .zip export or an unpacked folder")
    try:
        return _read_zip(path, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise ToolError(f"{path.name} is a damaged zip archive: {err}") from err
    except (NotImplementedError, RuntimeError) as err:
        # unsupported compression method or an encrypted member
        raise ToolError(f"{path.name} cannot be read: {err}") from err


def _read_zip(path: Path, limits: Limits) -> PackageFiles:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise ToolError(f"{path.name} has {len(infos)} members, over the limit of {limits.max_members}")
        for info in infos:
            _check_member_name(info.filename, path.name)
        files = {info.filename.lower(): info for info in infos if not info.is_dir()}
        layout = _layout(files, path.name)
        manifest_name, customizations_name = LAYOUTS[layout]
        manifest = _read_member(archive, files[manifest_name], limits, path.name)
        custom_info = files.get(customizations_name)
        customizations = _read_member(archive, custom_info, limits, path.name) if custom_info else None
        members = sorted(info.filename for info in files.values())
        parts = [
            (m, _read_member(archive, files[m.lower()], limits, path.name)) for m in component_members(layout, members)
        ]
        return PackageFiles(
            source="zip",
            layout=layout,
            manifest=manifest,
            customizations=customizations,
            members=members,
            total_bytes=sum(info.file_size for info in files.values()),
            component_files=parts,
        )


def _check_member_name(name: str, archive: str) -> None:
    """Refuse names that would land outside the extraction folder (zip-slip), whatever tool unpacks them."""
    normalised = name.replace("\\", "/")
    pure = PurePosixPath(normalised)
    if normalised.startswith("/") or ".." in pure.parts or (len(normalised) > 1 and normalised[1] == ":"):
        raise ToolError(f"{archive} contains an unsafe member name {name!r} (absolute or '..' path); refusing it")


def _layout(files: dict[str, object], label: str) -> str:
    for layout, (manifest, _customizations) in LAYOUTS.items():
        if manifest in files:
            return layout
    raise ToolError(f"{label} has no solution.xml (at the root or under Other/): not a Power Platform solution package")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, label: str) -> bytes:
    if info.file_size > limits.max_xml_bytes:
        raise ToolError(
            f"{label}: {info.filename} is {info.file_size} bytes uncompressed, "
            f"over the {limits.max_xml_bytes}-byte limit"
        )
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise ToolError(
            f"{label}: {info.filename} expands {info.file_size // max(info.compress_size, 1)}x "
            f"(limit {limits.max_ratio}x); refusing a likely decompression bomb"
        )
    data = bytearray()
    with archive.open(info) as stream:
        # the declared size can lie: count what is actually inflated
        while chunk := stream.read(CHUNK):
            data += chunk
            if len(data) > limits.max_xml_bytes:
                raise ToolError(f"{label}: {info.filename} inflates past the {limits.max_xml_bytes}-byte limit")
    return bytes(data)


def _read_folder(folder: Path, limits: Limits) -> PackageFiles:
    members: list[str] = []
    total = 0
    for item in folder.rglob("*"):
        if not item.is_file():
            continue
        members.append(item.relative_to(folder).as_posix())
        if len(members) > limits.max_members:
            raise ToolError(f"{folder.name} has more than {limits.max_members} files")
        total += item.stat().st_size
    files = {name.lower(): name for name in members}
    layout = _layout(files, f"folder {folder.name}")
    manifest_name, customizations_name = LAYOUTS[layout]
    manifest = _read_file(folder, files[manifest_name], limits)
    custom = files.get(customizations_name)
    return PackageFiles(
        source="folder",
        layout=layout,
        manifest=manifest,
        customizations=_read_file(folder, custom, limits) if custom else None,
        members=sorted(members),
        total_bytes=total,
        component_files=[(m, _read_file(folder, m, limits)) for m in component_members(layout, sorted(members))],
    )


def _read_file(folder: Path, relative: str, limits: Limits) -> bytes:
    try:
        path = resolve_inside(folder, relative)  # a symlink out of the package is refused
    except PathOutsideWorkspace as err:
        raise ToolError(f"{relative} in folder {folder.name} links outside the package; refusing it") from err
    size = path.stat().st_size
    if size > limits.max_xml_bytes:
        raise ToolError(f"{folder.name}/{relative} is {size} bytes, over the {limits.max_xml_bytes}-byte limit")
    return path.read_bytes()
