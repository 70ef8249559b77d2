"""The market catalog: loaded from the local exchange and from recorded Gamma/CLOB data, searched, refreshed."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from polyoms.core.market_events import TickSizeChange
from polyoms.core.units import TICK_SIZES
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.polymarket.client import MarketCatalog, VirtualTimer
from polyoms.polymarket.client.models import FeeParams, decode_gamma_markets, decode_markets_page
from tests.client.conftest import hub_for, market, run

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "polymarket"


def test_catalog_from_the_exchange(sim: ThreadedSim) -> None:
    specs = list(sim.service.exchange.markets())
    fee_spec = next(m for m in specs if m.fee.enabled and not m.neg_risk)
    plain = next(m for m in specs if not m.fee.enabled and not m.neg_risk and m.tick.text == "0.01")
    timer = VirtualTimer()

    async def body() -> None:
        async with hub_for(sim, timer) as hub:
            catalog = MarketCatalog(hub.public, ttl_s=60, clock=timer.clock)
            assert catalog.stale and len(catalog) == 0
            assert await catalog.refresh(enrich=True) == len(specs)
            assert not catalog.stale
            info = catalog.by_token(fee_spec.no_token_id)
            assert info is not None and info.condition_id == fee_spec.condition_id
            assert info.token_ids == (fee_spec.yes_token_id, fee_spec.no_token_id) and info.outcomes == ("Yes", "No")
            assert info.tick is fee_spec.tick and info.min_order_size == fee_spec.min_size and info.tradable
            assert info.fees_enabled and info.fee == FeeParams(Decimal(fee_spec.fee.rate), fee_spec.fee.exponent, True)
            assert info.sources == ("clob", "clob-markets") and info.end_date == fee_spec.end_date_iso
            assert info.other_token(fee_spec.yes_token_id) == fee_spec.no_token_id
            assert info.outcome_of(fee_spec.no_token_id) == "No"
            no_fee = catalog.by_condition(plain.condition_id)
            assert no_fee is not None and no_fee.fees_enabled is False and no_fee.fee is None
            world_cup = catalog.search("world cup")
            assert len(world_cup) == 3 and all(m.neg_risk for m in world_cup)
            assert [m.question for m in catalog.search("FRANCE 2026")] == [
                next(s.question for s in specs if "France" in s.question)
            ]
            assert catalog.search("no such market anywhere") == []
            assert len(catalog.search("will", limit=2)) == 2
            # The market channel says the tick changed: applied at once.
            changed = catalog.on_tick_size_change(plain.yes_token_id, "0.001")
            assert changed is not None and changed.tick is TICK_SIZES["0.001"]
            assert catalog.tick_size(plain.no_token_id) is TICK_SIZES["0.001"]
            event = TickSizeChange(plain.condition_id, plain.yes_token_id, TICK_SIZES["0.001"], TICK_SIZES["0.0001"])
            assert catalog.on_tick_size_change(event) is not None
            assert catalog.tick_size(plain.yes_token_id) is TICK_SIZES["0.0001"]
            # Stale after the TTL: ensure_fresh reloads; the venue's (older) tick wins over a change made before.
            timer.clock.advance(61_000)
            assert catalog.stale
            await catalog.ensure_fresh()
            assert catalog.refreshes == 2 and catalog.tick_size(plain.yes_token_id) is plain.tick
            await catalog.ensure_fresh()
            assert catalog.refreshes == 2  # fresh: nothing fetched
            # A change that arrives while a refresh is in flight survives it.
            task = asyncio.create_task(catalog.refresh())
            await asyncio.sleep(0)
            timer.clock.advance(1)
            catalog.on_tick_size_change(plain.yes_token_id, "0.001")
            await task
            assert catalog.tick_size(plain.yes_token_id) is TICK_SIZES["0.001"]
            assert catalog.on_tick_size_change("999", "0.01") is None  # unknown token: kept for later

    run(body())


def test_catalog_resolves_an_unknown_token_on_demand(sim: ThreadedSim) -> None:
    spec = market(sim, tick="0.0001")

    async def body() -> None:
        async with hub_for(sim) as hub:
            catalog = MarketCatalog(hub.public)
            info = await catalog.resolve_token(spec.no_token_id)
            assert info.condition_id == spec.condition_id and info.tick is TICK_SIZES["0.0001"]
            assert len(catalog) == 1 and hub.public.core.stats.by_path["GET /markets-by-token/" + spec.no_token_id] == 1
            assert await catalog.resolve_token(spec.yes_token_id) is catalog.by_condition(spec.condition_id)

    run(body())


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")
def test_catalog_from_recorded_gamma_and_clob_data() -> None:
    gamma_markets = decode_gamma_markets((FIXTURES / "gamma/markets_5_2026-06.json").read_bytes())
    page = decode_markets_page((FIXTURES / "rest/clob_markets_page_100_2024.json").read_bytes())
    catalog = MarketCatalog()
    catalog.add_gamma(gamma_markets)
    catalog.add_markets(page.items)
    assert len(catalog) == 105
    rihanna = catalog.search("rihanna album")
    assert len(rihanna) == 1 and rihanna[0].sources == ("gamma",) and rihanna[0].fee is not None
    assert rihanna[0].fee.rate == Decimal("0.05") and rihanna[0].tradable
    token = rihanna[0].token_ids[1]
    assert catalog.by_token(token) is rihanna[0] and rihanna[0].outcome_of(token) == "No"
    desantis = catalog.search("desantis")
    assert desantis and all(not m.tradable for m in desantis)  # closed, not accepting orders
    # The same market from both sources: CLOB fields win where known, Gamma's fee curve is kept.
    g = json.loads((FIXTURES / "gamma/market_closed_accepting_true.json").read_text())
    catalog.add_gamma(decode_gamma_markets(json.dumps([g]).encode()))
    clob_page = {"data": [json.loads((FIXTURES / "rest/clob_market_closed_accepting_true_2026.json").read_text())]}
    catalog.add_markets(decode_markets_page(json.dumps(clob_page).encode()).items)
    merged = catalog.by_condition(g["conditionId"])
    assert merged is not None and merged.sources == ("gamma", "clob")
    assert merged.gamma_id == g["id"] and merged.tick is TICK_SIZES["0.01"] and merged.closed is True
    assert merged.question == "Russia x Ukraine ceasefire by end of 2027?"
    assert merged.end_date == "2027-12-31T00:00:00Z"  # the CLOB's end date replaced Gamma's
