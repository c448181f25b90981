"""GET /runs/{id}/report of a portfolio run: the service renders it through write_report too."""

from __future__ import annotations

import httpx

from ..test_report import element, parse_report
from .conftest import wait_status


def test_the_report_of_a_portfolio_run_over_http(client: httpx.Client) -> None:
    body = {
        "data": {"symbols": 5, "bars": 300},
        "strategy": {"name": "equal_weight"},
        "execution": {"rebalance": "monthly"},
        "validation": {"enabled": False},
        "seed": 311,
    }
    run = client.post("/runs", json=body).json()
    wait_status(client, run["id"], ("completed",))
    response = client.get(f"/runs/{run['id']}/report")
    assert response.status_code == 200, response.text
    page = parse_report(response.text)
    element(page, "chart-weights")
    symbols = element(page, "table-symbols")
    assert [tr.attrs["data-symbol"] for tr in symbols.find("tbody").find_all("tr")] == [
        f"SYN{i:02d}" for i in range(1, 6)
    ]
    assert page.find("h1").text() == "equal_weight on 5 symbols 1d"
