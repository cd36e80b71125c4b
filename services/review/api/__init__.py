"""The officials' API under `/api` (FastAPI routers; OpenAPI at `/openapi.json` on review's port)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from services.review.api import actions, applications, audit, awards, dashboard, tasks
    from services.review.scoring import api as scoring

    return [tasks.router(), applications.router(), actions.router(), audit.router(), awards.router(), dashboard.router(),
            scoring.router()]
