"""Every recorded real REST, Gamma and Data-API response the client reads decodes into its typed results.

The recordings are served over HTTP by a fake venue, so they travel the same path as live answers.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from polyoms.core.enums import Side
from polyoms.core.units import TICK_SIZES
from polyoms.core.user_events import TraderSide, TradeStatus
from polyoms.polymarket.client import MarketCatalog, Wallet
from polyoms.polymarket.client.models import FeeParams
from polyoms.polymarket.protocol.auth import ApiCreds
from tests.client.conftest import KEY_A, FakeVenue, fake_hub, run

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "polymarket"
CREDS = ApiCreds("00000000-0000-4000-8000-000000000002", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "q" * 64)

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(raw(name))


def serve(name: str | bytes) -> Any:
    body = raw(name) if isinstance(name, str) else name

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    return handler


def test_rest_books() -> None:
    files = ["rest/book_2024-09.json", "rest/book_2024-10.json", "rest/book_btc_5m_2026-03.json"]
    files.append("rest/book_raw_2026-06.json")

    async def body() -> None:
        async with FakeVenue({}) as venue, fake_hub(venue.url) as hub:
            for name in files:
                venue.routes[("GET", "/book")] = serve(name)
                book = await hub.public.book("1")
                data = load(name)
                assert book.asset_id == data["asset_id"] and book.market == data["market"] and book.hash == data["hash"]
                assert len(book.bids) == len(data["bids"]) and len(book.asks) == len(data["asks"])
            venue.routes[("GET", "/book")] = serve("rest/book_btc_5m_2026-03.json")
            btc = await hub.public.book("1")
            assert btc.bids == () and btc.asks[-1] == (1_000, 385_409_390_000)  # best ask is the LAST level
            assert btc.tick_size is TICK_SIZES["0.001"] and btc.min_order_size == 5_000_000
            assert btc.last_trade_price == 999_000 and btc.neg_risk is False and btc.timestamp_ms == 1774166201606
            venue.routes[("GET", "/book")] = serve("rest/book_raw_2026-06.json")
            recent = await hub.public.book("1")
            assert recent.bids[-1] == (490_000, 65_000_000) and recent.asks[-1] == (510_000, 72_000_000)
            assert recent.last_trade_price is None  # served as ""
            both = b"[" + raw("rest/book_2024-10.json") + b"," + raw("rest/book_raw_2026-06.json") + b"]"
            venue.routes[("POST", "/books")] = serve(both)
            books = await hub.public.books(["a", "b"])
            assert [b.hash for b in books] == [load("rest/book_2024-10.json")["hash"], recent.hash]
            assert books[0].bids[-1] == (100_000, 125_000_000) and books[0].asks[-1] == (140_000, 705_000_000)

    run(body())


def test_rest_small_public_endpoints() -> None:
    async def body() -> None:
        routes = {
            ("GET", "/midpoint"): serve("rest/midpoint.json"),
            ("GET", "/last-trade-price"): serve("rest/last_trade_price.json"),
            ("GET", "/prices-history"): serve("rest/prices_history.json"),
        }
        async with FakeVenue(routes) as venue, fake_hub(venue.url) as hub:
            assert await hub.public.midpoint("1") == 500  # "0.0005"
            last = await hub.public.last_trade_price("1")
            assert (last.price, last.side) == (1_000, Side.BUY)
            history = await hub.public.prices_history("1", interval="1h", fidelity=5)
            assert [(p.t, p.price) for p in history] == [
                (1774165200, 420_000),
                (1774165500, 500_000),
                (1774168800, 650_000),
                (1774169100, 600_000),
            ]
            assert venue.queries[-1] == [("market", "1"), ("interval", "1h"), ("fidelity", "5")]

    run(body())


def test_rest_markets() -> None:
    async def body() -> None:
        async with FakeVenue({}) as venue, fake_hub(venue.url) as hub:
            venue.routes[("GET", "/markets")] = serve("rest/clob_markets_page_100_2024.json")
            page = await hub.public.markets_page()
            assert len(page.items) == 100 and page.next_cursor == "MTAw" and not page.last
            assert page.limit == 100 and page.count == 100
            assert all(m.tick in (TICK_SIZES["0.01"], TICK_SIZES["0.001"]) for m in page.items)
            sizes = {m.min_order_size for m in page.items}
            assert {15_000_000, 5_000_000, 0, 14_960_000, 14_970_000} <= sizes
            placeholder = [m for m in page.items if not m.tokens[0].token_id]
            assert len(placeholder) == 1  # a market with empty token ids is kept, not fatal
            catalog = MarketCatalog()
            catalog.add_markets(page.items)
            assert len(catalog) == 100 and catalog.by_condition(placeholder[0].condition_id) is not None
            for name in (
                "rest/clob_market_2024.json",
                "rest/clob_market_closed_accepting_false_2026.json",
                "rest/clob_market_closed_accepting_true_2026.json",
            ):
                data = load(name)
                venue.routes[("GET", f"/markets/{data['condition_id']}")] = serve(name)
                m = await hub.public.market(data["condition_id"])
                assert m.condition_id == data["condition_id"] and m.question == data["question"]
                assert [t.token_id for t in m.tokens] == [t["token_id"] for t in data["tokens"]]
                assert (m.closed, m.accepting_orders, m.neg_risk) == (
                    data["closed"],
                    data["accepting_orders"],
                    data["neg_risk"],
                )
            trump = await hub.public.market("0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917")
            assert trump.tick is TICK_SIZES["0.001"] and trump.min_order_size == 5_000_000 and trump.neg_risk
            assert [t.price for t in trump.tokens] == [486_500, 513_500] and trump.end_date == "2024-11-05T00:00:00Z"
            assert "Politics" in trump.tags

    run(body())


def test_rest_data_trade() -> None:
    item = load("rest/data_trade_confirmed_2024-09.json")
    page = json.dumps({"limit": 100, "count": 1, "next_cursor": "LTE=", "data": [item]}).encode()

    async def body() -> None:
        async with FakeVenue({("GET", "/data/trades"): serve(page)}) as venue, fake_hub(venue.url) as hub:
            c = hub.clob(Wallet.from_key(KEY_A, creds=CREDS))
            (trade,) = await c.trades()
            assert trade.id == item["id"] and trade.status is TradeStatus.CONFIRMED
            assert (trade.side, trade.size, trade.price) == (Side.BUY, 5_000_000, 489_000)
            assert trade.trader_side is TraderSide.TAKER and trade.match_time == 1726043102
            assert trade.last_update == 1726043282 and trade.fee_rate_bps == 0 and trade.bucket_index == 0
            (maker,) = trade.maker_orders
            assert maker.matched_amount == 5_000_000 and maker.price == 489_000 and maker.side is None  # 2024: no side
            assert maker.owner == "62880c97-4a03-c6fa-2665-e6072ffc6ae6"
            (_, _, headers, _) = venue.requests[-1]
            assert headers["POLY_API_KEY"] == CREDS.api_key and headers["POLY_ADDRESS"] == c.wallet.address  # type: ignore[union-attr]

    run(body())


def test_gamma_markets_events_search_tags() -> None:
    singles = [
        "gamma/market_btc_updown_5m_2026-03.json",
        "gamma/market_closed_accepting_false.json",
        "gamma/market_closed_accepting_true.json",
        "gamma/market_sports_moneyline.json",
    ]

    async def body() -> None:
        routes = {
            ("GET", "/markets"): serve("gamma/markets_5_2026-06.json"),
            ("GET", "/events"): serve("gamma/event_negrisk_2028_nominee.json"),
            ("GET", "/public-search"): serve("gamma/public_search.json"),
            ("GET", "/tags"): serve("gamma/tags.json"),
        }
        for i, name in enumerate(singles):
            routes[("GET", f"/markets/{i}")] = serve(name)
        async with FakeVenue(routes) as venue, fake_hub(venue.url) as hub:
            five = await hub.gamma.markets(active=True, closed=False, limit=5)
            assert len(five) == 5 and all(len(m.token_ids) == 2 and m.outcomes == ("Yes", "No") for m in five)
            assert five[0].fee == FeeParams(Decimal("0.05"), 1, True, Decimal("0.25"))
            assert five[0].tick is TICK_SIZES["0.01"] and five[0].min_order_size == 5_000_000
            assert venue.queries[-1] == [("active", "true"), ("closed", "false"), ("limit", "5"), ("offset", "0")]
            everything = await hub.gamma.all_markets(page_size=5, max_items=5)
            assert [m.id for m in everything] == [m.id for m in five]
            sports = await hub.gamma.market(3)
            assert sports.outcomes == ("FaZe", "illwill") and sports.token_ids[0].startswith("899723464")
            assert sports.seconds_delay == 3 and not sports.accepting_orders and sports.closed
            assert sports.fee is not None and sports.fee.rate == Decimal("0.03")
            for i, name in enumerate(singles):
                m = await hub.gamma.market(i)
                data = load(name)
                assert m.condition_id == data["conditionId"] and list(m.token_ids) == json.loads(data["clobTokenIds"])
                assert m.accepting_orders is data["acceptingOrders"] and m.tick is not None
            (event,) = await hub.gamma.events(slug="democratic-presidential-nominee-2028")
            assert event.neg_risk and len(event.markets) == 2 and all(m.neg_risk for m in event.markets)
            assert event.markets[0].tick is TICK_SIZES["0.001"] and event.markets[0].fee is None
            found = await hub.gamma.search("bitcoin")
            assert found.has_more and found.total == 46940 and found.events[0].slug == "bitcoin-above-on-march-11"
            assert found.events[0].markets[0].outcome_prices == (999_500, 500)
            tags = await hub.gamma.tags()
            assert [t.slug for t in tags][:2] == ["health-and-human-services", "sweeden"]
            catalog = MarketCatalog()
            catalog.add_gamma([*five, sports, *list(event.markets)])
            assert catalog.by_token(sports.token_ids[1]).outcome_of(sports.token_ids[1]) == "illwill"  # type: ignore[union-attr]

    run(body())


def test_data_api_positions_trades_activity() -> None:
    async def body() -> None:
        routes = {
            ("GET", "/positions"): serve("data-api/positions_anonymised.json"),
            ("GET", "/trades"): serve("data-api/trades_2026-03.json"),
            ("GET", "/activity"): serve("data-api/activity_anonymised.json"),
        }
        async with FakeVenue(routes) as venue, fake_hub(venue.url) as hub:
            user = "0x000000000000000000000000000000000000dEaD"
            positions = await hub.data.positions(user)
            assert len(positions) == 2 and positions[0].size == 262_980_000 and positions[0].avg_price == 605_800
            assert positions[0].cash_pnl == -159_338_700 and positions[0].realized_pnl == 0
            assert positions[0].redeemable and positions[0].outcome == "Up" and positions[0].end_date == "2026-04-30"
            assert venue.queries[-1] == [("user", user), ("limit", "100"), ("offset", "0")]
            trades = await hub.data.trades(market="0xba35")
            assert [t.size for t in trades] == [3_288_880, 1_754_383, 34_000_000]
            # The venue's float average 0.5699998232997013 is a statistic: rounded half-to-even to the micro-unit.
            assert [t.price for t in trades] == [900_000, 570_000, 902_941] and trades[0].side is Side.BUY
            activity = await hub.data.activity(user)
            assert [a.type for a in activity] == ["TAKER_REBATE"] * 3 and activity[0].usdc_size == 12_362_200
            assert activity[0].side is None and activity[0].timestamp == 1782173720

    run(body())
