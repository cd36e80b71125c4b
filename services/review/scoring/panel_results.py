"""The platform asks a Shenzhen lifecycle again for a panel result it could not deliver.

When the last expert of a panel scores, review computes the product's score (`review.product_scores`)
and asks the lifecycle to record it (update `sz-expert-scoring:<no>`, actor `system:review`). Under
load the lifecycle can stay busy with its previous step for longer than review's busy window
(`DECISION_BUSY_WINDOW_SECONDS`), or Temporal can be briefly unreachable: the score is kept, but the
lifecycle never hears of it, the product stays at 专家评审, and the program's tiering waits for it
(found by the lifecycle benchmark at 150 in flight). This loop finds such results, computed more
than `PANEL_RESULT_RETRY_SECONDS` ago, never recorded, of products still at `expert_scoring`, and
asks again: the same update id, so a result that did arrive is not applied twice. The
administrator's `POST /api/applications/{no}/scores/aggregate` still does the same at once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import structlog

from services.review import repository
from services.review.scoring.service import ScoringService
from subsidy.runtime import LoopTask

log = structlog.get_logger(__name__)


class PanelResultRetry(LoopTask):
    """A background loop of the review service (`ServiceDefinition.loops`, shown in `/health`)."""

    task_name = "panel-results"

    def __init__(self, pool: asyncpg.Pool, scoring: ScoringService, *, every_s: float, batch: int = 50) -> None:
        self.pool = pool
        self.scoring = scoring
        self.every_s = every_s
        self.batch = batch

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.run_once()
            except Exception as exc:  # logged; the next round asks again, the rows stay
                log.warning("panel results not asked again", error=type(exc).__name__, exc_info=True)

    async def run_once(self) -> int:
        """One round: every stuck panel result asked again. Returns how many the lifecycle recorded."""
        async with self.pool.acquire() as conn:
            stuck = await repository.unrecorded_panel_results(conn, older_than=timedelta(seconds=self.every_s),
                                                              limit=self.batch)
        recorded = 0
        for row in stuck:
            with structlog.contextvars.bound_contextvars(application_no=row["application_no"]):
                if await self.scoring.aggregate_if_complete(row["program"], row["application_no"]) is not None:
                    recorded += 1
        if stuck:
            log.info("panel results asked again", stuck=len(stuck), recorded=recorded)
        return recorded
