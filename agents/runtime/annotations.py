"""MCP tool annotations every agent tool carries, named for what the tool does to the world.

The hints are the MCP spec's (readOnlyHint, destructiveHint, idempotentHint, openWorldHint): clients and
Reynolds' own router read them, so a tool that changes or removes something is never called unasked.
"Open world" means the tool talks to a service outside the agent and its workspace (GitHub, Graph, an
LLM, Power Platform); the Docker daemon and the workspace are the agent's own, closed world."""

from __future__ import annotations

from mcp_types import ToolAnnotations

# Reads the workspace, knowledge, context or the Docker daemon's state; changes nothing.
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Reads an outside service (GitHub, Graph, Power Platform, an LLM); changes nothing.
READ_REMOTE = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
# Adds new files to the workspace (never overwrites one it did not create for this call).
ADD_LOCAL = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
# Adds something new to an outside service (an issue, a comment, a re-run); repeating it adds another.
ADD_REMOTE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
# Rewrites existing workspace files in place; the same call twice leaves the same result.
CHANGE_LOCAL = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
# Changes or replaces existing state of an outside service (issue fields, an imported solution).
CHANGE_REMOTE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)
# Interrupts something running (a container restart): destructive, and each call interrupts again.
DISRUPT = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
# Brings outside content (a clone, an export, generated code) into the workspace as new files.
FETCH = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
# Runs the workspace's own code (its tests) in the sandbox: may write inside the workspace, nothing else.
EXECUTE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
# Asks an LLM and may write its answer over a workspace file (each answer differs).
LLM_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)
