"""``AgentRuntime``: what a tool module gets to do its work (settings, layers, sandbox, memory)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.runtime.layers import Layers
from agents.runtime.memory import Memory
from agents.runtime.sandbox import Sandbox
from agents.runtime.settings import AgentSettings


@dataclass
class AgentRuntime:
    settings: AgentSettings
    layers: Layers = field(init=False)
    sandbox: Sandbox = field(init=False)
    memory: Memory = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.layers = Layers(s.knowledge_dir, s.context_dir, s.memory_dir, s.workspace_dir)
        self.layers.ensure_writable()
        self.sandbox = Sandbox(s.workspace_dir, s.command_timeout_s, s.command_output_limit)
        self.memory = Memory(s.memory_dir)
