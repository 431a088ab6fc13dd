"""What Reynolds forgets: finished tasks after ``REYNOLDS_RETENTION_DAYS``, and pools nobody uses (no
replica, no queued work, no static definition) after ``REYNOLDS_POOL_GRACE_S``. Run from the upkeep loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from reynolds.service import Service

log = structlog.get_logger("reynolds.retention")


async def forget(service: Service) -> None:
    purged = await service.store.purge_finished(service.settings.retention_days)
    pools = await service.registry.prune_pools(service.settings.pool_grace_s)
    if purged or pools:
        log.info("expired state forgotten", tasks=purged, pools=pools)
