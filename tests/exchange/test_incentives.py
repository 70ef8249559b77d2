"""The rewards programme and maker rebates as the exchange runs them: the seeded sampling schedule,
normalisation, daily payouts and the $1 minimum, rebates out of the fee pool, a clean audit, restarts."""

from __future__ import annotations

import time

import msgspec
from exchange_helpers import Harness

from polyoms.core.units import MICRO
from polyoms.exchange import persist
from polyoms.exchange.audit import audit
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.incentives import (
    DAY_MS,
    MAKER_REBATE,
    MINUTE_MS,
    REWARD,
    SHARE_SCALE,
    IncentivesState,
)
from polyoms.exchange.markets import MarketSpec, RewardsConfig, binary_market
from polyoms.polymarket.protocol.constants import PUSD

# Midnight UTC plus an hour, so a test starts inside a fresh day.
DAY0 = (1_777_000_000_000 // DAY_MS + 1) * DAY_MS
START = DAY0 + 3_600_000


def _market(daily: str = "100", category: str = "", fee: FeeCurve | None = None) -> MarketSpec:
    return binary_market(
        f"rewards-{daily}-{category}",
        "Rewarded?",
        category=category,
        fee=fee or FeeCurve(),
        rewards=RewardsConfig(30_000, 50 * MICRO, int(daily) * MICRO),
    )


def _pusd(h: Harness, address: str) -> int:
    return h.ex.balances(address).pusd


def _schedule(h: Harness, n: int) -> list[int]:
    out = []
    inc = h.ex.incentives
    for _ in range(n):
        t = inc.next_ms
        out.append(t)
        h.clock.set(t)
        h.ex.advance()
    return out


def test_sampling_schedule_is_seeded_one_instant_a_minute() -> None:
    a = _schedule(Harness([_market()], start_ms=START, seed=5), 50)
    b = _schedule(Harness([_market()], start_ms=START, seed=5), 50)
    c = _schedule(Harness([_market()], start_ms=START, seed=6), 50)
    assert a == b != c
    minutes = [t // MINUTE_MS for t in a]
    assert minutes == list(range(minutes[0], minutes[0] + 50))
    assert a[0] >= START and len({t % MINUTE_MS for t in a}) > 40  # random offsets within the minute


def _two_sided(h: Harness, spec: MarketSpec, size: str = "100") -> str:
    u = h.user("1000", {spec.yes_token_id: "500"})
    h.buy(u, spec.yes_token_id, "0.49", size)
    h.sell(u, spec.yes_token_id, "0.51", size)
    return u.address


def test_shares_normalise_and_the_day_pays_the_daily_rate() -> None:
    spec = _market("100")
    h = Harness([spec], start_ms=START)
    a = _two_sided(h, spec)
    b = _two_sided(h, spec, "300")  # same prices, three times the size: three quarters of each sample
    h.clock.set(DAY0 + DAY_MS - 1)
    h.ex.advance()
    state = h.ex.incentives.export_state()
    md = state.markets[spec.condition_id]
    assert md.samples == 23 * 60  # one a minute from 01:00 to the end of the day
    # Shares of 1/4 and 3/4 are exact at the scale: each sample adds up to one.
    assert sum(md.shares.values()) == md.samples * SHARE_SCALE
    assert h.ex.incentives.percentages_of(a)[spec.condition_id] == 25
    assert h.ex.incentives.percentages_of(b)[spec.condition_id] == 75
    before_a, before_b = _pusd(h, a), _pusd(h, b)
    h.clock.set(DAY0 + DAY_MS)
    h.ex.advance()
    got_a, got_b = _pusd(h, a) - before_a, _pusd(h, b) - before_b
    # The whole daily rate (the day's samples are all its samples), split 1:3.
    assert (got_a, got_b) == (25 * MICRO, 75 * MICRO)
    [pa] = h.ex.incentives.payouts_of(a)
    assert (pa.kind, pa.day, pa.condition_id, pa.amount, pa.paid_ms) == (
        REWARD,
        "2026-04-25",
        spec.condition_id,
        got_a,
        DAY0 + DAY_MS,
    )
    assert audit(h.ex) == []
    assert h.ex.incentives.percentages_of(a) == {}  # a new day


def test_below_one_dollar_is_not_paid() -> None:
    spec = _market("1")  # $1 a day split between two equal makers: $0.50 each
    h = Harness([spec], start_ms=START)
    a = _two_sided(h, spec)
    b = _two_sided(h, spec)
    funded = h.ex.ledger.funded_pusd
    h.clock.set(DAY0 + DAY_MS)
    h.ex.advance()
    assert h.ex.incentives.payouts_of(a) == h.ex.incentives.payouts_of(b) == []
    assert h.ex.ledger.funded_pusd == funded
    # Alone the next day, a maker earns the whole dollar.
    h.ex.cancel_all(h.ex.open_orders()[-1].owner)
    h.clock.set(DAY0 + 2 * DAY_MS)
    h.ex.advance()
    paid = [p.amount for p in h.ex.incentives.payouts_of(a) + h.ex.incentives.payouts_of(b)]
    assert paid == [MICRO]
    assert h.ex.ledger.funded_pusd == funded + MICRO
    assert audit(h.ex) == []


def test_maker_rebates_come_out_of_the_fee_pool() -> None:
    spec = binary_market("rebates-crypto", "Rebated?", category="crypto", fee=FeeCurve("0.07", 1))
    h = Harness([spec], start_ms=START)
    yes = spec.yes_token_id
    makers = [h.user("0", {yes: "1000"}) for _ in range(2)]
    taker = h.user("5000")
    h.sell(makers[0], yes, "0.50", "300")
    h.sell(makers[1], yes, "0.50", "100")
    res = h.buy(taker, yes, "0.50", "400")
    assert res.fee == 400 * 17_500  # 0.07 × 0.25 per share: $7.00
    h.clock.set(DAY0 + DAY_MS - 1)
    h.ex.advance()  # trades mined and confirmed: the fees are settled in the collector
    collector = h.ex.ledger.fee_collector
    pool_before = collector.pusd
    makers_before = sum(_pusd(h, u.address) for u in makers)
    h.clock.set(DAY0 + DAY_MS)
    h.ex.advance()
    paid = [p for u in makers for p in h.ex.incentives.payouts_of(u.address)]
    # 20 % of $7.00 = $1.40, split 3:1 by fee-equivalent: $1.05 paid; the other $0.35 is below the
    # $1 minimum and accrues.
    assert [(p.kind, p.amount, p.asset_address) for p in paid] == [(MAKER_REBATE, 1_050_000, PUSD)]
    assert h.ex.incentives.accrued_rebate(spec.condition_id, makers[1].address) == 350_000
    assert sum(p.amount for p in paid) <= 7 * MICRO * 20 // 100
    assert collector.pusd + sum(_pusd(h, u.address) for u in makers) == pool_before + makers_before
    assert audit(h.ex) == []


def test_state_round_trip_continues_identically() -> None:
    spec = _market("100")

    def run(h: Harness, until: int) -> None:
        h.clock.set(until)
        h.ex.advance()

    h1 = Harness([spec], start_ms=START, seed=3)
    a = _two_sided(h1, spec)
    _two_sided(h1, spec, "200")
    run(h1, START + 5 * 3_600_000)
    state = h1.ex.incentives.export_state()
    wire = msgspec.json.encode(state)
    restored = msgspec.json.decode(wire, type=IncentivesState)
    assert restored == state

    h2 = Harness([spec], start_ms=START, seed=99)  # a different seed: the state must override it
    _two_sided(h2, spec)
    _two_sided(h2, spec, "200")
    h2.clock.set(START + 5 * 3_600_000)
    h2.ex.incentives.restore_state(restored)
    assert h2.ex.incentives.export_state() == state
    run(h1, DAY0 + 2 * DAY_MS)
    run(h2, DAY0 + 2 * DAY_MS)
    assert h1.ex.incentives.export_state() == h2.ex.incentives.export_state()
    assert [p.amount for p in h1.ex.incentives.payouts_of(a)] == [p.amount for p in h2.ex.incentives.payouts_of(a)]


def test_a_week_of_samples_keeps_state_bounded() -> None:
    spec = _market("100")
    other = binary_market("rewards-second", "Second?", rewards=RewardsConfig(30_000, 50 * MICRO, 50 * MICRO))
    h = Harness([spec, other], start_ms=START)
    a = _two_sided(h, spec)
    _two_sided(h, other)
    t0 = time.perf_counter()
    held = []
    for day in range(1, 8):
        h.clock.set(DAY0 + day * DAY_MS + 2 * MINUTE_MS)
        h.ex.advance()
        st = h.ex.incentives.export_state()
        # What the current day holds: one total per market and maker, whatever the samples so far.
        held.append(sum(len(md.shares) + len(md.fee_equivalents) for md in st.markets.values()))
    elapsed = time.perf_counter() - t0
    assert held == [2] * 7
    # Past days are only their payout records: one per market, maker and day.
    st = h.ex.incentives.export_state()
    assert sum(len(ps) for ps in st.payouts.values()) == 14
    assert len(h.ex.incentives.payouts_of(a)) == 7
    assert audit(h.ex) == [] and elapsed < 20


def test_the_exchange_snapshot_carries_the_programme() -> None:
    """A restart from `persist` continues the programme: same sampling instants, same accumulated shares."""
    spec = _market("100")
    h = Harness([spec], start_ms=START, seed=3)
    a = _two_sided(h, spec)
    h.clock.set(START + 3 * 3_600_000)
    h.ex.advance()
    state = persist.capture_exchange(h.ex)
    wire = msgspec.json.encode(state)
    back = persist.restore_exchange(msgspec.json.decode(wire, type=persist.ExchangeState), h.clock)
    assert back.incentives.export_state() == h.ex.incentives.export_state()
    for ex in (h.ex, back):
        h.clock.set(DAY0 + DAY_MS + 60_000)
        ex.advance()
    assert [p.amount for p in back.incentives.payouts_of(a)] == [p.amount for p in h.ex.incentives.payouts_of(a)]
    assert back.incentives.payouts_of(a) and audit(back) == []
