"""Portfolios (SPEC §8): stored by uploading a long file (`POST /datasets`) or `btlab data
import`; listed, shown and deleted here. Run one with `{"source": "dataset", "id": <its id>}`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ..deps import StoreDep
from ..models import ERRORS, PortfolioOut

router = APIRouter(tags=["datasets"])


@router.get("/portfolios", response_model=list[PortfolioOut], responses=ERRORS)
def list_portfolios(store: StoreDep) -> list[PortfolioOut]:
    """Stored portfolios, newest first."""
    return [PortfolioOut.of(r) for r in store.list_portfolios()]


@router.get("/portfolios/{portfolio_id}", response_model=PortfolioOut, responses=ERRORS)
def get_portfolio(portfolio_id: str, store: StoreDep) -> PortfolioOut:
    """One stored portfolio (use its id as data.id with data.source 'dataset')."""
    return PortfolioOut.of(store.get_portfolio(portfolio_id))


@router.delete("/portfolios/{portfolio_id}", status_code=204, response_model=None, responses=ERRORS)
def delete_portfolio(portfolio_id: str, store: StoreDep) -> Response:
    """Delete a stored portfolio (409 while a queued or running run reads it); its members stay
    as datasets (DELETE /datasets/{id} each, once no portfolio holds it)."""
    store.delete_portfolio(portfolio_id)
    return Response(status_code=204)
