"""The REST client against the local exchange over real sockets: keys, markets, books, orders, pages."""

from __future__ import annotations

import time

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    AuthError,
    BelowMinimumSizeError,
    DuplicateOrderError,
    InvalidOrderError,
    PostOnlyWouldCrossError,
)
from polyoms.core.units import TICK_SIZES
from polyoms.core.user_events import TraderSide, TradeStatus
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.polymarket.client import LimitsConfig, Wallet
from tests.client.conftest import KEY_A, KEY_B, KEY_C, fund, hub_for, keyed, market, run


def test_api_keys_create_derive_and_l2_needs_them(sim: ThreadedSim) -> None:
    async def body() -> None:
        async with hub_for(sim) as hub:
            wallet = Wallet.from_key(KEY_A, name="a")
            client = hub.clob(wallet)
            with pytest.raises(AuthError, match="create_or_derive_api_key"):
                await client.balance_allowance()
            assert client.core.stats.sent == 0  # refused locally, before anything was sent
            with pytest.raises(AuthError):
                await client.derive_api_key()  # nothing created yet for (address, nonce 0)
            created = await client.create_api_key()
            derived = await client.derive_api_key()
            assert derived == created and client.creds == created
            assert client.wallet is not None and client.wallet.creds == created
            assert await client.api_keys() == [created.api_key]
            again = await client.create_or_derive_api_key()
            assert again.api_key == created.api_key
            other = hub.clob(Wallet.from_key(KEY_A, name="a1", nonce=1))
            rotated = await other.create_or_derive_api_key()
            assert rotated.api_key != created.api_key
            # Handing the hub a wallet with other credentials switches that wallet's client to them.
            assert hub.clob(Wallet.from_key(KEY_A, name="a", creds=rotated)) is client and client.creds == rotated
            assert sorted(await client.api_keys()) == sorted([created.api_key, rotated.api_key])
            client.creds = created
            assert await client.closed_only() is False

    run(body())


def test_meta_and_market_lookups(sim: ThreadedSim) -> None:
    specs = {m.condition_id: m for m in sim.service.exchange.markets()}
    fee_spec = next(m for m in specs.values() if m.fee.enabled and not m.neg_risk)
    fine = market(sim, tick="0.001")
    nr = next(m for m in specs.values() if m.neg_risk)

    async def body() -> None:
        async with hub_for(sim) as hub:
            pub = hub.public
            assert await pub.ok() is True
            assert await pub.get_version() == 2 and pub.server_version == 2
            assert abs(await pub.server_time() - time.time()) < 5
            markets = await pub.all_markets()
            assert {m.condition_id for m in markets} == set(specs)
            one = await pub.market(fee_spec.condition_id)
            assert one.question == fee_spec.question and one.tick is fee_spec.tick
            assert [t.token_id for t in one.tokens] == [fee_spec.yes_token_id, fee_spec.no_token_id]
            assert one.min_order_size == fee_spec.min_size and one.accepting_orders
            info = await pub.clob_market(fee_spec.condition_id)
            assert info.fee is not None and str(info.fee.rate) == fee_spec.fee.rate
            assert info.fee.exponent == fee_spec.fee.exponent and info.fee.taker_only is fee_spec.fee.taker_only
            assert info.tick is fee_spec.tick and info.min_order_size == fee_spec.min_size
            pair = await pub.market_by_token(fine.no_token_id)
            assert (pair.condition_id, pair.primary_token_id, pair.secondary_token_id) == (
                fine.condition_id,
                fine.yes_token_id,
                fine.no_token_id,
            )
            assert await pub.tick_size(fine.yes_token_id) is TICK_SIZES["0.001"]
            assert await pub.neg_risk(nr.yes_token_id) is True and await pub.neg_risk(fine.yes_token_id) is False
            assert await pub.fee_rate_bps(fine.yes_token_id) == fine.fee.rate_bps  # one fee everywhere
            assert (await pub.clob_market(nr.condition_id)).neg_risk is True

    run(body())


def test_books_prices_and_last_trade(sim: ThreadedSim) -> None:
    m = market(sim)
    others = [x.yes_token_id for x in sim.service.exchange.markets() if x.condition_id != m.condition_id][:2]

    async def body() -> None:
        async with hub_for(sim, books_chunk=2) as hub:
            maker = await keyed(hub, KEY_A, "maker")
            taker = await keyed(hub, KEY_B, "taker")
            fund(sim, maker.address, "100", {m.yes_token_id: "50"})
            fund(sim, taker.address, "100")
            mb, tb = maker.order_builder(), taker.order_builder()
            a = hub.clob(maker)
            assert (await a.post_order(mb.limit(m.yes_token_id, "BUY", "0.40", "10", tick=m.tick))).status == "live"
            assert (await a.post_order(mb.limit(m.yes_token_id, "SELL", "0.60", "20", tick=m.tick))).status == "live"
            pub = hub.public
            book = await pub.book(m.yes_token_id)
            assert book.asset_id == m.yes_token_id and book.market == m.condition_id
            assert book.bids == ((400_000, 10_000_000),) and book.asks == ((600_000, 20_000_000),)
            assert book.tick_size is m.tick and book.min_order_size == m.min_size
            books = await hub.books([m.yes_token_id, *others])
            assert list(books) == [m.yes_token_id, *others] and books[m.yes_token_id].bids == book.bids
            assert pub.core.stats.by_path["POST /books"] == 2  # 3 tokens in chunks of 2
            assert await pub.price(m.yes_token_id, Side.BUY) == 400_000  # BUY names the resting bids
            assert await pub.price(m.yes_token_id, "SELL") == 600_000
            prices = await pub.prices([(m.yes_token_id, "BUY"), (m.yes_token_id, "SELL")])
            assert prices == {m.yes_token_id: {Side.BUY: 400_000, Side.SELL: 600_000}}
            assert await pub.midpoint(m.yes_token_id) == 500_000
            assert await pub.midpoints([m.yes_token_id]) == {m.yes_token_id: 500_000}
            assert await pub.spread(m.yes_token_id) == 200_000
            assert await pub.spreads([m.yes_token_id]) == {m.yes_token_id: 200_000}
            none_yet = await pub.last_trade_price(m.yes_token_id)
            assert none_yet.side is None
            took = await hub.clob(taker).post_order(
                tb.limit(m.yes_token_id, "BUY", "0.60", "5", tick=m.tick, order_type=OrderType.FAK)
            )
            assert took.status == "matched" and took.making == 3_000_000 and took.taking == 5_000_000
            assert len(took.trade_ids) == 1
            last = await pub.last_trade_price(m.yes_token_id)
            assert (last.price, last.side) == (600_000, Side.BUY)
            lasts = await pub.last_trades_prices([m.yes_token_id, m.no_token_id])
            assert lasts[m.yes_token_id] == last and lasts[m.no_token_id].price == 400_000
            history = await pub.prices_history(m.yes_token_id, start_ts=0)
            assert [p.price for p in history] == [600_000]

    run(body())


def test_post_cancel_and_lookup_orders(sim: ThreadedSim) -> None:
    m = market(sim)
    m2 = market(sim, tick="0.001")

    async def body() -> None:
        async with hub_for(sim) as hub:
            w = await keyed(hub, KEY_A, "a")
            fund(sim, w.address, "1000")
            b, c = w.order_builder(), hub.clob(w)
            orders = [b.limit(m.yes_token_id, "BUY", f"0.{30 + i}", "10", tick=m.tick) for i in range(4)]
            orders.append(b.limit(m2.yes_token_id, "BUY", "0.123", "10", tick=m2.tick))
            for o in orders:
                placed = await c.post_order(o)
                assert placed.order_id == o.order_id and placed.status == "live"
            found = await c.get_order(orders[0].order_id)
            assert found is not None and found.status == "LIVE" and found.price == 300_000
            assert found.original_size == 10_000_000 and found.side is Side.BUY and found.remaining == 10_000_000
            assert await c.get_order("0x" + "ab" * 32) is None
            one = await c.cancel_order(orders[0].order_id)
            assert one.canceled == (orders[0].order_id,) and not one.not_canceled
            again = await c.cancel_order(orders[0].order_id)
            assert again.canceled == () and orders[0].order_id in again.not_canceled
            many = await c.cancel_orders([orders[1].order_id, orders[1].order_id, orders[2].order_id])
            assert set(many.canceled) == {orders[1].order_id, orders[2].order_id}
            by_market = await c.cancel_market_orders(market=m2.condition_id)
            assert by_market.canceled == (orders[4].order_id,)
            assert [o.id for o in await c.open_orders()] == [orders[3].order_id]
            everything = await c.cancel_all()
            assert everything.canceled == (orders[3].order_id,)
            assert await c.open_orders() == []
            assert sim.service.exchange.get_order(orders[3].order_id).status == "CANCELED"  # type: ignore[union-attr]

    run(body())


def test_batch_has_typed_outcome_per_order(sim: ThreadedSim) -> None:
    m = market(sim)

    async def body() -> None:
        async with hub_for(sim) as hub:
            w = await keyed(hub, KEY_A, "a")
            fund(sim, w.address, "1000", {m.yes_token_id: "100"})
            b, c = w.order_builder(), hub.clob(w)
            resting = b.limit(m.yes_token_id, "SELL", "0.55", "10", tick=m.tick)
            await c.post_order(resting)
            good = b.limit(m.yes_token_id, "BUY", "0.40", "10", tick=m.tick)
            tiny = b.limit(m.yes_token_id, "BUY", "0.41", "1", tick=m.tick)  # below the market's 5 minimum
            crossing = b.limit(m.yes_token_id, "BUY", "0.55", "10", tick=m.tick, post_only=True)
            good2 = b.limit(m.yes_token_id, "SELL", "0.70", "10", tick=m.tick)
            batch = [good, tiny, crossing, resting, good2]
            outcomes = await c.post_orders(batch)
            assert [o.order_id for o in outcomes] == [o.order_id for o in batch]
            assert [o.ok for o in outcomes] == [True, False, False, False, True]
            assert outcomes[0].placement is not None and outcomes[0].placement.status == "live"
            assert isinstance(outcomes[1].error, BelowMinimumSizeError)
            assert isinstance(outcomes[2].error, PostOnlyWouldCrossError)
            assert isinstance(outcomes[3].error, DuplicateOrderError)
            assert outcomes[1].error.context["order_id"] == tiny.order_id
            live = {o.id for o in await c.open_orders()}
            assert live == {resting.order_id, good.order_id, good2.order_id}  # the exchange's truth agrees
            with pytest.raises(InvalidOrderError, match="max allowed: 15"):
                await c.post_orders([good] * 16)
            foreign = Wallet.from_key(KEY_B).order_builder().limit(m.yes_token_id, "BUY", "0.3", "10", tick=m.tick)
            sent = c.core.stats.sent
            with pytest.raises(InvalidOrderError, match="another wallet"):
                await c.post_order(foreign)
            with pytest.raises(InvalidOrderError, match="another wallet"):
                await c.post_orders([good2, foreign])
            assert c.core.stats.sent == sent  # refused before anything was sent
            assert await c.post_orders([]) == []

    run(body())


def test_pagination_over_a_hundred_orders_and_trades(sim: ThreadedSim) -> None:
    m = market(sim)
    n = 105

    async def body() -> None:
        async with hub_for(sim, limits=LimitsConfig(signer_tier="elite")) as hub:
            maker = await keyed(hub, KEY_A, "maker")
            taker = await keyed(hub, KEY_B, "taker")
            fund(sim, maker.address, "0", {m.yes_token_id: str(5 * n)})
            fund(sim, taker.address, "1000")
            mb, tb = maker.order_builder(), taker.order_builder()
            mc, tc = hub.clob(maker), hub.clob(taker)
            asks = [mb.limit(m.yes_token_id, "SELL", "0.60", "5", tick=m.tick) for _ in range(n)]
            for i in range(0, n, 15):
                assert all(o.ok for o in await mc.post_orders(asks[i : i + 15]))
            open_orders = await mc.open_orders()
            assert [o.id for o in open_orders] == [o.order_id for o in asks]
            assert mc.core.stats.by_path["GET /data/orders"] == 2  # 100 + 5
            bids = [tb.limit(m.yes_token_id, "BUY", "0.60", "5", tick=m.tick, order_type="FAK") for _ in range(n)]
            for i in range(0, n, 15):
                outcomes = await tc.post_orders(bids[i : i + 15])
                assert all(o.placement is not None and o.placement.status == "matched" for o in outcomes)
            taker_trades = await tc.trades()
            assert len(taker_trades) == n and len({t.id for t in taker_trades}) == n
            assert tc.core.stats.by_path["GET /data/trades"] == 2
            assert {t.taker_order_id for t in taker_trades} == {o.order_id for o in bids}
            assert all(t.trader_side is TraderSide.TAKER and t.price == 600_000 for t in taker_trades)
            assert all(t.size == 5_000_000 and t.status in TradeStatus for t in taker_trades)
            maker_trades = await mc.trades()
            assert len(maker_trades) == n and all(t.trader_side is TraderSide.MAKER for t in maker_trades)
            fills = {f.order_id for t in maker_trades for f in t.fills_of(owner=maker.creds.api_key)}  # type: ignore[union-attr]
            assert fills == {o.order_id for o in asks}
            assert await mc.open_orders() == []
            one = await tc.trades(trade_id=taker_trades[7].id)
            assert [t.id for t in one] == [taker_trades[7].id]

    run(body())


def test_balance_allowance(sim: ThreadedSim) -> None:
    m = market(sim)

    async def body() -> None:
        async with hub_for(sim) as hub:
            w = await keyed(hub, KEY_C, "c")
            fund(sim, w.address, "123.45", {m.yes_token_id: "7.5"})
            c = hub.clob(w)
            cash = await c.balance_allowance()
            assert cash.balance == 123_450_000 and len(cash.allowances) == 3 and cash.allowance >= cash.balance
            shares = await c.balance_allowance("CONDITIONAL", token_id=m.yes_token_id)
            assert shares.balance == 7_500_000
            await c.update_balance_allowance()
            fund(sim, w.address, "1")
            assert (await c.balance_allowance()).balance == 124_450_000

    run(body())


def test_heartbeats_chain_and_resume(sim: ThreadedSim) -> None:
    async def body() -> None:
        async with hub_for(sim) as hub:
            w = await keyed(hub, KEY_A, "a")
            c = hub.clob(w)
            first = await c.heartbeat()
            second = await c.heartbeat()
            assert first and second and first != second and c.heartbeat_id == second
            c.heartbeat_id = first  # as if the answer to `second` had been lost: the venue names the id it wants
            third = await c.heartbeat()
            assert third not in (first, second) and c.heartbeat_resyncs == 1
            # A restarted process starts with "" while the chain is alive: resumed the same way.
            restarted = hub_for(sim)
            async with restarted:
                fresh = restarted.clob(w)
                assert await fresh.heartbeat() not in (first, second, third)
                assert fresh.heartbeat_resyncs == 1

    run(body())
