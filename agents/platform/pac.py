"""The Power Platform CLI (``pac``) run through the agent's sandbox: finding the binary, building
argument lists, and turning a failed run into an error that quotes what pac said. pac keeps its own
sign-in (``pac auth create``); this module never handles credentials."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from pydantic import Field

from agents.runtime.errors import NotConfigured, ToolError
from agents.runtime.sandbox import CommandResult, Sandbox

NOT_INSTALLED = (
    "pac CLI not installed: no 'pac' executable on {where}. Install the Power Platform CLI "
    "(dotnet tool install --global Microsoft.PowerApps.CLI.Tool), sign in with `pac auth create`, "
    "or point PAC_SEARCH_PATH at the folder that holds it"
)
# pac prints progress to stdout and failures to either stream; the tail is what explains a failure
ERROR_TAIL_LINES = 15


class PacResult(CommandResult):
    """One pac run: the command, its exit code and output, and what it wrote."""

    output_path: str | None = Field(None, description="file or folder the command wrote, relative to the workspace")


def find_pac(search_path: str | None) -> str:
    """Absolute path of ``pac`` on ``search_path`` (os.pathsep separated; None means PATH)."""
    found = shutil.which("pac", path=search_path)
    if not found:
        where = f"PAC_SEARCH_PATH={search_path!r}" if search_path is not None else "PATH"
        raise NotConfigured(NOT_INSTALLED.format(where=where))
    return found


async def run_pac(
    sandbox: Sandbox, pac: str, args: Sequence[str], timeout_s: float, output_path: str | None = None
) -> PacResult:
    """Run ``pac args...`` in the workspace; a non-zero exit becomes a ToolError with pac's own words."""
    # telemetry off: agents run unattended and offline-friendly
    result = await sandbox.run([pac, *args], timeout_s=timeout_s, env={"PP_TOOLS_TELEMETRY_OPTOUT": "1"})
    if result.exit_code != 0:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()[-ERROR_TAIL_LINES:]
        raise ToolError(
            f"pac {' '.join(args[:2])} failed (exit {result.exit_code}): " + (" | ".join(said) or "no output")
        )
    return PacResult(**result.model_dump(), output_path=output_path)


def flag(value: bool) -> str:
    """pac's boolean option values."""
    return "true" if value else "false"
