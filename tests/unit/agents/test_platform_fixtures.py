"""Builders of real Power Platform solution packages for the platform agent's tests: ``solution.xml``,
``customizations.xml`` and ``[Content_Types].xml`` written into a zip (or a folder) with known
properties and known defects. No tests live here; the other test_platform_* modules import it."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/octet-stream" />'
    '<Default Extension="json" ContentType="application/octet-stream" /></Types>'
)


def solution_xml(
    unique_name: str = "CfsCore",
    version: str = "1.4.0.0",
    managed: bool | str = False,
    prefix: str = "cfs",
    publisher: str = "contosofieldservices",
    roots: Iterable[tuple[int, str]] = ((1, "cfs_workorder"), (1, "account"), (380, "cfs_ServiceSiteUrl")),
    missing: Iterable[tuple[int, str, str]] = (),
) -> str:
    """A manifest. ``roots`` are (type, schemaName); ``missing`` are (type, schemaName, providing solution)."""
    flag = managed if isinstance(managed, str) else ("1" if managed else "0")
    root_xml = "".join(f'<RootComponent type="{t}" schemaName="{n}" behavior="0" />' for t, n in roots)
    missing_xml = "".join(
        f'<MissingDependency><Required type="{t}" schemaName="{n}" displayName="{n}" solution="{s}" />'
        f'<Dependent type="2" schemaName="cfs_workorder_{n}" parentSchemaName="cfs_workorder" /></MissingDependency>'
        for t, n, s in missing
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ImportExportXml version="9.2.24093.182" SolutionPackageVersion="9.2" languagecode="1033" generatedBy="CrmLive"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <SolutionManifest>
    <UniqueName>{unique_name}</UniqueName>
    <LocalizedNames><LocalizedName description="Field Services Core" languagecode="1033" /></LocalizedNames>
    <Descriptions />
    <Version>{version}</Version>
    <Managed>{flag}</Managed>
    <Publisher>
      <UniqueName>{publisher}</UniqueName>
      <LocalizedNames><LocalizedName description="Contoso Field Services" languagecode="1033" /></LocalizedNames>
      <Descriptions />
      <EMailAddress xsi:nil="true"></EMailAddress>
      <CustomizationPrefix>{prefix}</CustomizationPrefix>
      <CustomizationOptionValuePrefix>72650</CustomizationOptionValuePrefix>
    </Publisher>
    <RootComponents>{root_xml}</RootComponents>
    <MissingDependencies>{missing_xml}</MissingDependencies>
  </SolutionManifest>
</ImportExportXml>
"""


def customizations_xml(
    entities: Iterable[str] = ("cfs_workorder", "account"),
    entity_extra: Mapping[str, str] | None = None,
    optionsets: Iterable[str] = ("cfs_priority",),
    roles: Iterable[str] = ("Field Technician",),
    workflows: Iterable[str] = ("Notify dispatcher on P1 work order",),
    web_resources: Iterable[str] = ("cfs_/scripts/workorder.js",),
    canvas_apps: Iterable[str] = ("cfs_technicianapp_8f2a1",),
    plugin_assemblies: Iterable[str] = ("Cfs.Plugins, Version=1.0.0.0, Culture=neutral, PublicKeyToken=abc",),
    connection_references: Iterable[tuple[str, str]] = (("cfs_TeamsEscalations", "shared_teams"),),
    environment_variables: Iterable[str] = ("cfs_ServiceSiteUrl",),
    extra: str = "",
) -> str:
    """A customizations.xml with one section per component kind; ``entity_extra`` adds XML inside an entity."""
    extra_by_entity = entity_extra or {}
    entity_xml = "".join(
        f'<Entity><Name LocalizedName="{e}" OriginalName="{e}">{e}</Name>'
        f'<EntityInfo><entity Name="{e}">{extra_by_entity.get(e, "")}</entity></EntityInfo></Entity>'
        for e in entities
    )
    options_xml = "".join(
        f'<optionset Name="{o}" localizedName="Priority"><OptionSetType>picklist</OptionSetType></optionset>'
        for o in optionsets
    )
    roles_xml = "".join(
        f'<Role id="{{0000000{i}-0000-0000-0000-000000000000}}" name={quoteattr(r)} />' for i, r in enumerate(roles)
    )
    workflows_xml = "".join(
        f'<Workflow WorkflowId="{{1000000{i}-0000-0000-0000-000000000000}}" Name={quoteattr(w)}>'
        f"<JsonFileName>/Workflows/flow{i}.json</JsonFileName><Type>1</Type><Category>5</Category></Workflow>"
        for i, w in enumerate(workflows)
    )
    web_xml = "".join(
        f"<WebResource><WebResourceId>{{2000000{i}-0000-0000-0000-000000000000}}</WebResourceId><Name>{w}</Name>"
        f"<DisplayName>{w}</DisplayName><WebResourceType>3</WebResourceType></WebResource>"
        for i, w in enumerate(web_resources)
    )
    canvas_xml = "".join(
        f"<CanvasApp><Name>{c}</Name><DisplayName>Technician app</DisplayName></CanvasApp>" for c in canvas_apps
    )
    plugin_xml = "".join(
        f'<PluginAssembly FullName={quoteattr(p)} PluginAssemblyId="{{30000000-0000-0000-0000-00000000000{i}}}" />'
        for i, p in enumerate(plugin_assemblies)
    )
    conn_xml = "".join(
        f'<connectionreference connectionreferencelogicalname="{n}">'
        f"<connectionreferencedisplayname>{n}</connectionreferencedisplayname>"
        f"<connectorid>/providers/Microsoft.PowerApps/apis/{c}</connectorid></connectionreference>"
        for n, c in connection_references
    )
    env_xml = "".join(
        f'<environmentvariabledefinition schemaname="{v}"><displayname default="{v}" /><type>100000000</type>'
        "</environmentvariabledefinition>"
        for v in environment_variables
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<ImportExportXml xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" OrganizationVersion="9.2.24093.182">
  <Entities>{entity_xml}</Entities>
  <Roles>{roles_xml}</Roles>
  <Workflows>{workflows_xml}</Workflows>
  <FieldSecurityProfiles />
  <Templates />
  <EntityMaps />
  <EntityRelationships />
  <OrganizationSettings />
  <optionsets>{options_xml}</optionsets>
  <CustomControls />
  <SolutionPluginAssemblies>{plugin_xml}</SolutionPluginAssemblies>
  <WebResources>{web_xml}</WebResources>
  <CanvasApps>{canvas_xml}</CanvasApps>
  <connectionreferences>{conn_xml}</connectionreferences>
  <environmentvariabledefinitions>{env_xml}</environmentvariabledefinitions>
  {extra}
  <Languages><Language>1033</Language><Language>1031</Language></Languages>
</ImportExportXml>
"""


def package_files(solution: str | None = None, customizations: str | None = None) -> dict[str, str]:
    """The files of a typical export: manifest, customizations, content types and one flow definition."""
    return {
        "solution.xml": solution if solution is not None else solution_xml(),
        "customizations.xml": customizations if customizations is not None else customizations_xml(),
        "[Content_Types].xml": CONTENT_TYPES,
        "Workflows/flow0.json": '{"properties": {"definition": {"triggers": {}}}}',
    }


def write_zip(path: Path, files: Mapping[str, str | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def write_folder(path: Path, files: Mapping[str, str | bytes]) -> Path:
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return path
