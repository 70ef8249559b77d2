"""The official py-clob-client-v2, unchanged, against the rewards, scoring and rebate endpoints."""

from __future__ import annotations

import httpx
import msgspec
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import OrderArgsV2, OrderScoringParams, OrdersScoringParams
from py_clob_client_v2.exceptions import PolyApiException

from polyoms.exchange.api.runner import ThreadedSim
from polyoms.exchange.incentives import MAKER_REBATE, REWARD, REWARD_ASSET, SHARE_SCALE, MarketDay, Payout
from polyoms.exchange.markets import MarketSpec
from tests.exchange_api.conftest import KEY_A, fund


def _client(sim: ThreadedSim, key: str) -> ClobClient:
    client = ClobClient(sim.url, chain_id=137, key=key)
    client.set_api_creds(client.create_or_derive_api_key())
    return client


def _rewarded(sim: ThreadedSim) -> MarketSpec:
    return next(m for m in sim.service.exchange.markets() if m.rewards is not None and m.tick.text == "0.01")


def test_order_scoring(sim: ThreadedSim) -> None:
    a = _client(sim, KEY_A)
    market = _rewarded(sim)
    token = market.yes_token_id
    fund(sim, a.get_address(), "1000", {token: "500"})
    bid = a.create_and_post_order(OrderArgsV2(token_id=token, price=0.49, size=50, side="BUY"))
    ask = a.create_and_post_order(OrderArgsV2(token_id=token, price=0.51, size=50, side="SELL"))
    small = a.create_and_post_order(OrderArgsV2(token_id=token, price=0.50, size=5, side="BUY"))
    far = a.create_and_post_order(OrderArgsV2(token_id=token, price=0.40, size=50, side="BUY"))
    assert a.is_order_scoring(OrderScoringParams(orderId=bid["orderID"])) == {"scoring": True}
    assert a.is_order_scoring(OrderScoringParams(orderId=small["orderID"])) == {"scoring": False}
    ids = [bid["orderID"], ask["orderID"], small["orderID"], far["orderID"], "0x" + "0" * 64]
    assert a.are_orders_scoring(OrdersScoringParams(orderIds=ids)) == {
        ids[0]: True,
        ids[1]: True,
        ids[2]: False,
        ids[3]: False,
        ids[4]: False,
    }
    # L2 is required, as on the venue.
    assert httpx.get(f"{sim.url}/order-scoring", params={"order_id": bid["orderID"]}).status_code == 401


def test_earnings_percentages_and_configs(sim: ThreadedSim) -> None:
    a = _client(sim, KEY_A)
    me = a.get_address().lower()
    market = _rewarded(sim)
    cid = market.condition_id
    assert market.rewards is not None
    incentives = sim.service.exchange.incentives
    # Yesterday's records, as a restart would bring them back.
    paid = [
        Payout("2026-04-25", cid, REWARD_ASSET, REWARD, 12_500_000, 0),
        Payout("2026-04-25", cid, REWARD_ASSET, MAKER_REBATE, 1_237_519, 0),
    ]
    state = incentives.export_state()
    today = {cid: MarketDay(samples=4, shares={me: 2 * SHARE_SCALE})}  # half of four samples so far
    incentives.restore_state(msgspec.structs.replace(state, payouts={me: paid}, markets=today))

    earnings = a.get_earnings_for_user_for_day("2026-04-25")
    assert earnings == [
        {
            "date": "2026-04-25",
            "condition_id": cid,
            "asset_address": REWARD_ASSET,
            "maker_address": me,
            "earnings": 12.5,
            "asset_rate": 1,
        }
    ]
    assert a.get_earnings_for_user_for_day("2026-04-24") == []
    total = a.get_total_earnings_for_user_for_day("2026-04-25")
    assert total == [
        {"date": "2026-04-25", "asset_address": REWARD_ASSET, "maker_address": me, "earnings": 12.5, "asset_rate": 1}
    ]
    # 50 %, or 40 % if the exchange took its next sample (with no order of ours) meanwhile.
    assert a.get_reward_percentages() in ({cid: 50}, {cid: 40})
    user_markets = a.get_user_earnings_and_markets_config("2026-04-25")
    assert {m["condition_id"] for m in user_markets} == {
        m.condition_id for m in sim.service.exchange.markets() if m.rewards
    }
    mine = next(m for m in user_markets if m["condition_id"] == cid)
    assert mine["earnings"] == [{"asset_address": REWARD_ASSET, "earnings": 12.5, "asset_rate": 1}]
    assert mine["rewards_max_spread"] == 4.5 and mine["rewards_min_size"] == 20
    assert mine["tokens"][0]["token_id"] == market.yes_token_id
    assert mine["rewards_config"][0]["rate_per_day"] == 100

    current = a.get_current_rewards()
    assert {r["condition_id"] for r in current} == {m["condition_id"] for m in user_markets}
    raw = a.get_raw_rewards_for_market(cid)
    assert len(raw) == 1 and raw[0]["market_slug"] == market.slug and raw[0]["rewards_min_size"] == 20
    assert a.get_raw_rewards_for_market("0x" + "1" * 64) == []

    rebates = httpx.get(f"{sim.url}/rebates/current", params={"date": "2026-04-25", "maker_address": me})
    assert rebates.status_code == 200
    assert rebates.json() == [
        {
            "date": "2026-04-25T00:00:00Z",
            "condition_id": cid,
            "asset_address": REWARD_ASSET,
            "maker_address": me,
            "rebated_fees_usdc": "1.237519",
        }
    ]
    assert httpx.get(f"{sim.url}/rebates/current", params={"date": "2026-04-25"}).status_code == 400
    bad = httpx.get(f"{sim.url}/rebates/current", params={"date": "yesterday", "maker_address": me})
    assert bad.status_code == 400


def test_bad_requests_are_4xx(sim: ThreadedSim) -> None:
    a = _client(sim, KEY_A)
    try:
        a.get_earnings_for_user_for_day("25/04/2026")
    except PolyApiException as exc:
        assert exc.status_code == 400
    else:
        raise AssertionError("a malformed date must be refused")
