"""Over real sockets, against the embedded exchange and a counterparty: a market BUY spends at most its
--amount including the taker fee and shows one price and a fill never above its size in every view;
positions are marked to the mid and the bid with unrealized PnL, which the metrics export; history and
pnl (control API and CLI, csv/json) agree with the ledger."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from polyoms.cli.main import app
from polyoms.core.units import MICRO, to_micro
from polyoms.oms.fills import FillTier
from polyoms.ops.daemon import Daemon, DaemonThread
from tests.ops.daemon_helpers import Counterparty, first_market, fund, start_daemon, wait_until


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def call(d: Daemon, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(
        method, f"{d.control_url}/v1{path}", headers={"Authorization": f"Bearer {d.token}"}, timeout=30, **kw
    )
    assert r.status_code == 200, r.text
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text


def cli(d: Daemon, *args: str) -> str:
    res = CliRunner().invoke(app, [*args, "--url", d.control_url, "--token", d.token])
    assert res.exit_code == 0, res.output
    return res.output


def settled(thread: DaemonThread, d: Daemon, order_id: str) -> None:
    assert d.state is not None
    state = d.state

    def done() -> bool:
        o = state.orders[order_id]
        fills = state.fills_of(order_id)
        return (
            o.state.value in ("FILLED", "CANCELLED")
            and bool(fills)
            and all(f.tier is FillTier.CONFIRMED for f in fills)
            and not o.awaiting_fills
        )

    assert wait_until(thread, done, timeout_s=20), state.orders[order_id]


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in the metrics")


def test_market_buy_positions_history_and_pnl(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    assert d.catalog is not None
    market, yes, _no = first_market(d)
    info = d.catalog.by_token(yes)
    assert info is not None and info.fee is not None and info.fee.rate > 0  # a fee-bearing market
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), pusd="1000", tokens={yes: "200"})
    assert them.post("SELL", yes, "0.76", "60") == "live"
    assert them.post("BUY", yes, "0.70", "100") == "live"
    assert wait_until(thread, lambda: d.desk is not None and d.desk.mark(yes) == 730_000)
    cash0 = to_micro(call(d, "GET", "/positions")["cash"])

    # --amount 25: at most 25 pUSD leave the wallet, fee included; the answer says how it splits.
    acc = call(d, "POST", "/orders", json={"token_id": yes, "side": "BUY", "kind": "market", "amount": "25"})
    assert acc["max_spend"] == "25" and acc["size"] is None
    spend, fee_est = to_micro(acc["amount"]), to_micro(acc["fee_estimate"])
    assert spend + fee_est <= 25 * MICRO and fee_est > 0 and f"{acc['amount']} on shares" in acc["note"]
    oid = acc["order_id"]
    settled(thread, d, oid)
    view = call(d, "GET", f"/orders/{oid}")
    listed = next(o for o in call(d, "GET", "/orders")["orders"] if o["order_id"] == oid)
    # One price everywhere (the grid price it was priced at, not 0.760005 / 0.760006).
    assert acc["price"] == view["price"] == listed["price"] == "0.76"
    assert view["size_unit"] == "pUSD" and view["size"] == acc["amount"]
    assert to_micro(view["filled"]) <= to_micro(view["size"])  # pUSD spent, never above the size
    # The bug: shown in shares, the size was the order's takerAmount (shares at the worst price, rounded
    # down to 4 decimals), which the venue's fill exceeds (32.342105 > 32.3421).
    assert d.state is not None and to_micro(view["filled_shares"]) > d.state.orders[oid].size
    assert to_micro(view["filled_shares"]) > to_micro(view["filled"])  # shares at 0.76 outnumber the pUSD
    assert view["avg_price"] == "0.76" and to_micro(view["fees"]) > 0
    shares = to_micro(view["filled_shares"])
    cash1 = to_micro(call(d, "GET", "/positions")["cash"])
    spent = cash0 - cash1
    assert spent == to_micro(view["filled"]) + to_micro(view["fees"]) and spent <= 25 * MICRO

    # Sell part back into the bid: realized PnL.
    sell = call(d, "POST", "/orders", json={"token_id": yes, "side": "SELL", "price": "0.70", "size": "10"})
    settled(thread, d, sell["order_id"])
    pos = call(d, "GET", "/positions")
    (row,) = [p for p in pos["positions"] if p["token_id"] == yes]
    assert d.state is not None
    p = d.state.ledger(d.venue.wallet if d.venue else "").positions[yes]
    held = shares - 10 * MICRO
    assert p.confirmed == held and to_micro(row["confirmed"]) == held
    assert row["mark"] == "0.73" and row["liquidation_price"] == "0.7"
    assert to_micro(row["market_value"]) == p.value(730_000)
    assert to_micro(row["unrealized"]) == p.value(730_000) - p.cost
    assert to_micro(row["liquidation_value"]) == p.value(700_000)
    assert to_micro(row["liquidation_pnl"]) == p.value(700_000) - p.cost
    assert to_micro(pos["unrealized"]) == p.value(730_000) - p.cost
    assert to_micro(pos["equity"]) == to_micro(pos["cash"]) + p.value(730_000) and pos["unmarked"] == []
    assert p.realized < 0 and to_micro(row["realized"]) == p.realized  # bought at 0.76 + fee, sold at 0.70

    table = cli(d, "positions")
    assert "unrealized" in table and row["unrealized"] in table and row["liquidation_value"] in table

    # The unrealized-PnL metric is set, at the same mark.
    text = call(d, "GET", "/metrics")
    assert metric(text, "polyoms_pnl_unrealized_pusd", token=yes) == pytest.approx((p.value(730_000) - p.cost) / MICRO)
    assert metric(text, "polyoms_pnl_unrealized_total_pusd") == pytest.approx(float(pos["unrealized"]))

    # History: our fills with fees and tiers, realized per market equal to the ledger's.
    h = call(d, "GET", "/history")
    ours = [f for f in h["fills"] if f["order_id"] in (oid, sell["order_id"])]
    assert {f["tier"] for f in ours} == {"CONFIRMED"} and sum(to_micro(f["fee"]) for f in ours) > 0
    (m,) = [x for x in h["markets"] if x["market"] == market]
    assert to_micro(m["realized"]) == p.realized and to_micro(m["position"]) == held
    assert to_micro(m["bought"]) == shares and to_micro(m["sold"]) == 10 * MICRO
    assert call(d, "GET", "/history", params={"market": market, "limit": "1"})["truncated"] == len(ours) - 1
    rows = list(csv.DictReader(io.StringIO(cli(d, "history", "--format", "csv"))))
    assert {r["trade_id"] for r in rows} >= {f["trade_id"] for f in ours}
    assert all(r["tier"] in ("PROVISIONAL", "CONFIRMED", "VOIDED") for r in rows)
    summary = list(csv.DictReader(io.StringIO(cli(d, "history", "--format", "csv", "--summary"))))
    assert any(r["market"] == market and to_micro(r["realized"]) == p.realized for r in summary)
    assert "by market" in cli(d, "history")

    # PnL: the equity curve from the journal; the last point is now, equal to the positions' equity.
    curve = json.loads(cli(d, "pnl", "--format", "json"))
    pts = curve["points"]
    assert pts[-1]["cause"] == "now" and pts[-1]["equity"] == pos["equity"]
    assert {"balance", "fill"} <= {x["cause"] for x in pts}
    assert [x["ts_ms"] for x in pts] == sorted(x["ts_ms"] for x in pts)
    fills_pt = [x for x in pts if x["cause"] == "fill"]
    assert to_micro(fills_pt[-1]["realized"]) == p.realized
    csv_pts = list(csv.DictReader(io.StringIO(cli(d, "pnl", "--format", "csv", "--points", "2"))))
    assert len(csv_pts) == 2 and csv_pts[-1]["cause"] == "now"
    assert "equity" in cli(d, "pnl")
    r = httpx.get(f"{d.control_url}/v1/pnl?points=1", headers={"Authorization": f"Bearer {d.token}"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "InputError"
    r = httpx.get(f"{d.control_url}/v1/history?limit=%C2%B2", headers={"Authorization": f"Bearer {d.token}"})
    assert r.status_code == 400


def test_amount_help_says_the_fee_is_included() -> None:
    res = CliRunner().invoke(app, ["order", "add", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "taker fee included" in " ".join(res.output.split())


def test_a_held_token_without_a_book_gets_one_for_its_mark(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    assert d.desk is not None and d.market_stream is not None and d.catalog is not None
    desk, stream = d.desk, d.market_stream
    info = next(i for i in d.catalog if i.tick is not None and i.tick.text == "0.01" and not i.neg_risk)
    token = info.token_ids[1]
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), pusd="100", tokens={token: "20"})
    assert them.post("SELL", token, "0.31", "10") == "live" and them.post("BUY", token, "0.25", "10") == "live"

    async def drop() -> None:
        await stream.unsubscribe(info.token_ids)  # as after a restart: a position nobody subscribed

    thread.call(drop)
    assert token not in stream.subscribed
    # Asked for its mark (positions, a metrics scrape), the desk subscribes; the mid follows.
    assert wait_until(thread, lambda: desk.mark(token) is not None, timeout_s=15)
    q = desk.quote(token)
    assert q is not None and q.best_bid is not None and q.best_ask is not None
    assert desk.mark(token) == (q.best_bid + q.best_ask) // 2 and q.best_bid >= 250_000 and q.best_ask <= 310_000


def test_an_amount_the_fee_takes_below_the_minimum_is_refused(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, yes, _ = first_market(d)
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), pusd="0", tokens={yes: "20"})
    assert them.post("SELL", yes, "0.80", "10") == "live"
    assert d.state is not None
    before = len(d.state.orders)
    body = {"token_id": yes, "side": "BUY", "kind": "market", "amount": "1"}
    r = httpx.post(f"{d.control_url}/v1/orders", json=body, headers={"Authorization": f"Bearer {d.token}"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "BelowMinimumSizeError", r.text
    assert "after the taker fee" in r.json()["message"] and len(d.state.orders) == before
