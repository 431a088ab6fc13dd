"""Integration fixtures: a real cluster (Reynolds + workbench agents as processes, real Postgres/Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster, cluster


@pytest.fixture
def reynolds_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path / "cluster") as c:
        yield c
