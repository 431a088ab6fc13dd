"""Scenario files: what an experiment runs, which strategies it compares, and what it expects.

Everything here treats its input as hostile: the text is bounded before parsing, YAML anchors and aliases
are refused (an alias bomb expands only later, in whoever walks the tree), and every field is checked
with an error that names it. Nothing is stored until a scenario has passed all of this."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from scipy import stats

from reynolds import errors
from reynolds.experiments.strategies import STRATEGY_PATTERN, parse_strategy
from reynolds.models import POOL_NAME, Plan

MAX_SCENARIO_BYTES = 64_000
MAX_RUNS = 200
METRICS = ("makespan_s", "success_rate", "retries", "overhead_s", "parallelism", "utilisation")
Metric = Literal["makespan_s", "success_rate", "retries", "overhead_s", "parallelism", "utilisation"]
FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.ya?ml$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Duration(_Strict):
    """Seconds each generated component sleeps, drawn from a scipy distribution (clipped to [0, 60])."""

    distribution: Literal["constant", "uniform", "normal", "exponential"] = "constant"
    seconds: Annotated[float, Field(ge=0, le=60)] = 0.2  # constant; the mean for normal and exponential
    low: Annotated[float, Field(ge=0, le=60)] = 0.0  # uniform
    high: Annotated[float, Field(ge=0, le=60)] = 1.0  # uniform
    stdev: Annotated[float, Field(ge=0, le=60)] = 0.1  # normal

    @model_validator(mode="after")
    def _ordered(self) -> Duration:
        if self.distribution == "uniform" and self.high < self.low:
            raise ValueError("uniform needs low <= high")
        return self

    def draw(self, n: int, seed: int) -> list[float]:
        dist = {
            "constant": stats.uniform(loc=self.seconds, scale=0),
            "uniform": stats.uniform(loc=self.low, scale=self.high - self.low),
            "normal": stats.norm(loc=self.seconds, scale=self.stdev),
            "exponential": stats.expon(scale=self.seconds),
        }[self.distribution]
        return [round(min(max(float(x), 0.0), 60.0), 3) for x in dist.rvs(size=n, random_state=seed)]


class Generated(_Strict):
    """A random DAG of workbench sleeps: component i depends on each earlier component with probability
    ``interdependency_ratio`` (at most ``max_dependencies`` of them). Same seed, same DAG."""

    component_count: Annotated[int, Field(ge=1, le=200)]
    interdependency_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    max_dependencies: Annotated[int, Field(ge=0, le=10)] = 3
    duration: Duration = Field(default_factory=Duration)
    seed: Annotated[int, Field(ge=0, le=2**31)] = 0
    tool: Annotated[str, Field(min_length=1, max_length=200)] = "sleep"
    # the demand mix over specialised pools: each component is drawn onto one, with these weights
    # (none: the pool that offers the tool); a `pool:NAME` strategy then compares them with one generalist pool
    pools: Annotated[
        dict[Annotated[str, Field(pattern=rf"^{POOL_NAME}$")], Annotated[float, Field(gt=0, le=1000)]] | None,
        Field(min_length=1, max_length=10),
    ] = None

    def plan(self) -> Plan:
        n = self.component_count
        seconds = self.duration.draw(n, self.seed)
        coins = stats.uniform().rvs(size=n**2, random_state=self.seed + 1)
        pools = self._pools(n)
        subtasks = []
        for i in range(n):
            deps = [f"c{j}" for j in range(i) if coins[i * n + j] < self.interdependency_ratio]
            subtasks.append(
                {
                    "id": f"c{i}",
                    "tool": self.tool,
                    "arguments": {"seconds": seconds[i]},
                    "depends_on": deps[-self.max_dependencies :] if self.max_dependencies else [],
                    "pool": pools[i],
                }
            )
        return Plan.model_validate({"subtasks": subtasks})

    def _pools(self, n: int) -> list[str | None]:
        if not self.pools:
            return [None] * n
        names, weights = list(self.pools), list(self.pools.values())
        mix = stats.rv_discrete(values=(range(len(names)), [w / sum(weights) for w in weights]))
        return [names[int(k)] for k in mix.rvs(size=n, random_state=self.seed + 2)]


class Workload(_Strict):
    """Exactly one of: an explicit plan, or a generator."""

    plan: Plan | None = None
    generate: Generated | None = None

    @model_validator(mode="after")
    def _one(self) -> Workload:
        if (self.plan is None) == (self.generate is None):
            raise ValueError("give exactly one of workload.plan or workload.generate")
        return self

    def resolve(self) -> Plan:
        return self.plan if self.plan is not None else self.generate.plan()  # type: ignore[union-attr]


class Claim(_Strict):
    """One testable part of the hypothesis: ``strategy``'s ``metric`` compared with ``than``'s (times ``ratio``).
    ``lower``/``higher`` need significant evidence; ``not_lower``/``not_higher`` hold unless contradicted."""

    metric: Metric
    strategy: Annotated[str, Field(pattern=STRATEGY_PATTERN)]
    direction: Literal["lower", "higher", "not_lower", "not_higher"]
    than: Annotated[str, Field(pattern=STRATEGY_PATTERN)]
    ratio: Annotated[float, Field(gt=0, le=1000)] = 1.0


class Hypothesis(_Strict):
    statement: Annotated[str, Field(min_length=1, max_length=500)]
    claims: Annotated[list[Claim], Field(min_length=1, max_length=10)]


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")]
    description: Annotated[str, Field(max_length=2000)] = ""
    workload: Workload
    # workspace: the task's source (contract 1); kept here so scenarios can name it, passed in runner.submit_run
    workspace: dict[str, str] | None = None
    strategies: Annotated[list[Annotated[str, Field(pattern=STRATEGY_PATTERN)]], Field(min_length=2, max_length=6)]
    repetitions: Annotated[int, Field(ge=1, le=50)] = 5
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
    significance: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    metrics: Annotated[list[Metric], Field(min_length=1)] = Field(default_factory=lambda: list(METRICS))
    hypothesis: Hypothesis | None = None

    @field_validator("strategies")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each strategy may be listed once")
        for name in value:
            parse_strategy(name)  # its bounds (replicas) beyond what the pattern says
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if len(self.strategies) * self.repetitions > MAX_RUNS:
            raise ValueError(
                f"strategies x repetitions is {len(self.strategies) * self.repetitions}; at most {MAX_RUNS}"
            )
        for i, claim in enumerate(self.hypothesis.claims if self.hypothesis else []):
            for name in (claim.strategy, claim.than):
                if name not in self.strategies:
                    raise ValueError(f"hypothesis.claims.{i} names strategy {name!r}, which is not in strategies")
        return self


def parse(source: str | dict[str, Any]) -> Scenario:
    """A validated scenario from YAML/JSON text or an already-parsed mapping; InvalidRequest naming the field."""
    if isinstance(source, str):
        if len(source.encode()) > MAX_SCENARIO_BYTES:
            raise errors.InvalidRequest(f"scenario is over {MAX_SCENARIO_BYTES} bytes")
        data = _load_yaml(source)
    else:
        if len(json.dumps(source)) > MAX_SCENARIO_BYTES:
            raise errors.InvalidRequest(f"scenario is over {MAX_SCENARIO_BYTES} bytes")
        data = source
    if not isinstance(data, dict):
        raise errors.InvalidRequest("scenario must be a mapping (name, workload, strategies, ...)")
    try:
        scenario = Scenario.model_validate(data)
        scenario.workload.resolve()
    except ValidationError as err:
        raise errors.InvalidRequest(f"scenario is invalid: {_describe(err)}") from None
    return scenario


def read_file(directory: Path, name: str) -> str:
    """The text of ``name`` in the experiments directory: a bare file name, no paths, bounded size."""
    if not FILE_PATTERN.fullmatch(name):
        raise errors.InvalidRequest(
            f"scenario file {name!r} must be a bare .yaml/.yml name in the experiments directory"
        )
    path = directory / name
    if not path.is_file():
        raise errors.NotFound(f"no scenario file {name!r} in {directory}")
    if path.stat().st_size > MAX_SCENARIO_BYTES:
        raise errors.InvalidRequest(f"scenario file {name!r} is over {MAX_SCENARIO_BYTES} bytes")
    return path.read_text(errors="replace")


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML anchors and aliases are not allowed in scenarios")
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except RecursionError:
        raise errors.InvalidRequest("scenario is nested too deeply") from None
    except yaml.YAMLError as err:
        raise errors.InvalidRequest(f"scenario is not valid YAML: {err}") from None


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "scenario"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)
