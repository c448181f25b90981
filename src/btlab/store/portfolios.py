"""The portfolios of the btlab home (SPEC §8): one id for K stored datasets, each under a symbol.

A portfolio's members are ordinary stored datasets (one Parquet file each, named by content
hash, stored once however many portfolios hold them); its row holds the portfolio's facts and
``portfolio_members`` maps each of its symbols to a dataset id. A member's symbol is the
portfolio's (a dataset stored earlier under another name keeps that row's name). Its id is the
portfolio hash (`PortfolioDataset.hash`), so the same symbols with the same bars are stored once.
A dataset that a portfolio holds cannot be deleted before the portfolio.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from .datasets import DatasetStore
from .rows import RunStateError, _dumps, now_iso

if TYPE_CHECKING:
    from ..data.portfolio import PortfolioDataset


@dataclass(frozen=True)
class PortfolioRow:
    """One stored portfolio (its id is its portfolio hash); `members` maps symbol -> dataset id."""

    id: str
    symbols: int
    timeframe: str
    rows: int
    start: str | None
    end: str | None
    source: str
    created_at: str
    members: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


_COLUMNS = 'id, symbols, timeframe, rows, start, "end", source, created_at, meta'


class PortfolioStore(DatasetStore):
    """Stored portfolios: add, get, list, load, delete (mixed into `Store`)."""

    def _portfolio(self, row: Sequence[Any]) -> PortfolioRow:
        members = self._query(
            "SELECT symbol, dataset_id FROM portfolio_members WHERE portfolio_id = ? "
            "ORDER BY symbol",
            (row[0],),
        )
        return PortfolioRow(
            id=row[0], symbols=row[1], timeframe=row[2], rows=row[3], start=row[4], end=row[5],
            source=row[6], created_at=row[7], members={str(s): str(d) for s, d in members},
            meta=json.loads(row[8]),
        )  # fmt: skip

    def get_portfolio(self, portfolio_id: str) -> PortfolioRow:
        rows = self._query(f"SELECT {_COLUMNS} FROM portfolios WHERE id = ?", (portfolio_id,))
        if not rows:
            raise NotFoundError(f"unknown portfolio id {portfolio_id!r}")
        return self._portfolio(rows[0])

    def list_portfolios(self) -> list[PortfolioRow]:
        """Every stored portfolio, newest first."""
        rows = self._query(f"SELECT {_COLUMNS} FROM portfolios ORDER BY created_at DESC, id")
        return [self._portfolio(r) for r in rows]

    def add_portfolio(self, portfolio: PortfolioDataset) -> tuple[PortfolioRow, bool]:
        """Store a validated portfolio once by its hash: ``(row, created)``. Each member is
        stored as a dataset first (once by content hash), then the row and its members in one
        transaction."""
        try:
            return self.get_portfolio(portfolio.hash), False
        except NotFoundError:
            pass
        members = {s: self.add_dataset(m)[0].id for s, m in portfolio.members.items()}
        meta = portfolio.meta
        meta_json = meta.model_dump(mode="json")
        with self._tx() as tx:
            if tx.execute("SELECT 1 FROM portfolios WHERE id = ?", (meta.id,)).fetchone():
                return self.get_portfolio(meta.id), False
            tx.execute(
                f"INSERT INTO portfolios ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (meta.id, len(members), meta.timeframe, meta.rows, meta.start.isoformat(),
                 meta.end.isoformat(), meta.source, now_iso(), _dumps(meta_json)),
            )  # fmt: skip
            for symbol, dataset_id in members.items():
                tx.execute(
                    "INSERT INTO portfolio_members (portfolio_id, symbol, dataset_id) "
                    "VALUES (?, ?, ?)",
                    (meta.id, symbol, dataset_id),
                )
        return self.get_portfolio(meta.id), True

    def load_portfolio(self, portfolio_id: str) -> PortfolioDataset:
        """A stored portfolio by id, each member under its portfolio symbol; NotFoundError if
        unknown. Its timeframe and calendar are kept where they were declared at import."""
        # here, not at the top: `btlab runs list` and the light commands open the store
        # without pandas, which the data modules import
        from ..data import declare
        from ..data.portfolio import from_members

        row = self.get_portfolio(portfolio_id)
        meta = row.meta
        timeframe = meta["timeframe"] if meta.get("timeframe_declared") else None
        calendar = meta["calendar"] if meta.get("calendar_declared") else None
        members = {}
        for symbol, dataset_id in row.members.items():
            stored = self.load_dataset(dataset_id)
            members[symbol] = declare(stored, timeframe=timeframe, calendar=calendar)
        return from_members(members, timeframe=timeframe, calendar=calendar, source=row.source)

    def delete_portfolio(self, portfolio_id: str) -> PortfolioRow:
        """Delete a stored portfolio's row (its member datasets stay, as datasets). RunStateError
        while a queued or running run reads it."""
        row = self.get_portfolio(portfolio_id)
        with self._tx() as tx:
            users = [
                r[0]
                for r in tx.execute(
                    "SELECT id FROM runs WHERE status IN ('queued', 'running') "
                    "AND json_extract(config, '$.data.source') = 'dataset' "
                    "AND json_extract(config, '$.data.id') = ?",
                    (portfolio_id,),
                ).fetchall()
            ]
            if users:
                raise RunStateError(
                    f"portfolio {portfolio_id} is in use by active run(s) {', '.join(users)}; "
                    "cancel them or wait for them to finish"
                )
            tx.execute("DELETE FROM portfolio_members WHERE portfolio_id = ?", (portfolio_id,))
            tx.execute("DELETE FROM portfolios WHERE id = ?", (portfolio_id,))
        return row

    def portfolios_holding(self, dataset_id: str) -> list[str]:
        """The ids of the stored portfolios that hold a dataset, sorted."""
        rows = self._query(
            "SELECT DISTINCT portfolio_id FROM portfolio_members WHERE dataset_id = ? "
            "ORDER BY portfolio_id",
            (dataset_id,),
        )
        return [str(r[0]) for r in rows]
