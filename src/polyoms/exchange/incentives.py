"""The venue's maker programmes, run by the exchange as a timer: liquidity rewards and maker rebates.

Liquidity rewards (docs: market-makers/liquidity-rewards). Each market with a programme is sampled once
a minute at a random instant within the minute (one seeded stream for all markets). A sample scores
every maker (`rewards.maker_scores`) and gives each its share of the sample; shares add up per UTC day,
market and maker. At midnight UTC each maker is paid `daily_rate × its shares / the day's samples`,
floored to the micro, if that is at least $1. Rewards are new money from the venue, credited through the
ledger's fund path, so conservation holds (`audit`).

Maker rebates (docs: market-makers/maker-rebates). A category's share of each market's taker fees of the
day is split among that market's makers by fee-equivalent (`fees.fee_equivalent` of each maker fill) and
paid at midnight UTC out of the fee collector's settled balance, by transfer: the fee pool only moves.

Only running totals are kept for the current day (nothing per sample), and one `Payout` per maker,
market, kind and day that paid.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import msgspec

from polyoms.exchange import rewards
from polyoms.exchange.fees import fee_equivalent, rebate_share
from polyoms.exchange.trades import Trade
from polyoms.polymarket.protocol.constants import PUSD

if TYPE_CHECKING:
    from polyoms.exchange.engine import Exchange
    from polyoms.exchange.orders import Order

MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
MIN_PAYOUT: Final = 1_000_000
"""$1: the docs' minimum payout for both programmes."""
SHARE_SCALE: Final = 10**18
"""A sample's shares are kept as integers of 10⁻¹⁸ (floored), so a day's sum stays a plain int."""
REWARD: Final = "REWARD"
MAKER_REBATE: Final = "MAKER_REBATE"
REWARD_ASSET: Final = PUSD
"""`asset_address` of every payout: the currency paid (the venue reports its collateral there)."""
CARRY_UNPAID_REBATES: Final = True
"""UNCONFIRMED: the rebates page asks for "a minimum accrued rebate of $1", read as: a maker's rebate
below $1 accrues to the next day. (Rewards below $1 are lost: "amounts below this will not be paid".)"""
PERCENT_STEP: Final = Decimal("0.01")


class Payout(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One payment to a maker."""

    day: str
    """The UTC day earned, "YYYY-MM-DD"."""
    condition_id: str
    asset_address: str
    kind: str
    """`REWARD` or `MAKER_REBATE`."""
    amount: int
    """Micro-pUSD."""
    paid_ms: int


class MarketDay(msgspec.Struct, forbid_unknown_fields=True):
    """One market's running totals for the current UTC day."""

    samples: int = 0
    shares: dict[str, int] = msgspec.field(default_factory=dict)
    """Maker → Σ of its sample shares × `SHARE_SCALE`."""
    fees: int = 0
    """Taker fees charged in the market (micro-pUSD)."""
    fee_equivalents: dict[str, int] = msgspec.field(default_factory=dict)
    volume: int = 0
    """pUSD matched in the market today (the takers' side, fees excluded)."""


class IncentivesState(msgspec.Struct, forbid_unknown_fields=True):
    """What a restart needs to carry on exactly."""

    seed: int
    rng_version: int
    rng_state: list[int]
    minute: int
    next_sample_ms: int
    day: int
    markets: dict[str, MarketDay] = msgspec.field(default_factory=dict)
    carried_rebates: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    payouts: dict[str, list[Payout]] = msgspec.field(default_factory=dict)
    paid_rewards: dict[str, int] = msgspec.field(default_factory=dict)


def day_text(day: int) -> str:
    """The UTC date of day number `day` (days since the epoch)."""
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


class Incentives:
    """Liquidity rewards and maker rebates of one exchange (an `engine.Timer` and a trade hook)."""

    def __init__(self, exchange: Exchange, seed: int = 0) -> None:
        self._ex = exchange
        self._seed = seed
        self._rng = random.Random(f"polyoms:rewards:{seed}")
        now = exchange.clock.now_ms()
        self._day = now // DAY_MS
        self._minute = now // MINUTE_MS
        self._next_sample = self._draw()
        if self._next_sample < now:  # this minute's instant has passed: start with the next one
            self._minute += 1
            self._next_sample = self._draw()
        self._markets: dict[str, MarketDay] = {}
        self._carried: dict[str, dict[str, int]] = {}
        self._payouts: dict[str, list[Payout]] = {}
        self._paid: dict[str, int] = {}
        """Condition id → liquidity rewards paid in it so far (micro-pUSD)."""
        exchange.add_timer(self)
        exchange.add_trade_hook(self.on_trades)

    def _draw(self) -> int:
        return self._minute * MINUTE_MS + self._rng.randrange(MINUTE_MS)

    # --- the timer -------------------------------------------------------------------------------

    @property
    def next_ms(self) -> int:
        day_end = (self._day + 1) * DAY_MS
        return self._next_sample if self._next_sample < day_end else day_end

    def run(self, now_ms: int) -> None:
        """Take every sample and close every day due by `now_ms`, in time order. The book cannot have
        changed since the last operation (each runs the timers first), so a late sample sees what it
        would have seen on time."""
        while True:
            day_end = (self._day + 1) * DAY_MS
            if self._next_sample < day_end:
                if self._next_sample > now_ms:
                    return
                self._sample()
                self._minute += 1
                self._next_sample = self._draw()
            else:
                if day_end > now_ms:
                    return
                self._close_day(day_end)
                self._day += 1

    def _sample(self) -> None:
        for book in self._ex.books.values():
            spec = book.spec
            cfg = spec.rewards
            if cfg is None or spec.closed or not spec.active or spec.resolved:
                continue
            md = self._markets.get(spec.condition_id)
            if md is None:
                md = self._markets[spec.condition_id] = MarketDay()
            md.samples += 1
            acc = md.shares
            for maker, share in rewards.normalized(rewards.maker_scores(book, cfg)).items():
                acc[maker] = acc.get(maker, 0) + share.numerator * SHARE_SCALE // share.denominator

    # --- rebates ---------------------------------------------------------------------------------

    def on_trades(self, trades: Sequence[Trade], now_ms: int) -> None:
        """Trade hook: count each taker fee into its market's pool and each maker fill's fee-equivalent."""
        for t in trades:
            book = self._ex.books.get(t.market.lower())
            if book is None:
                continue
            spec = book.spec
            md = self._markets.get(spec.condition_id)
            if md is None:
                md = self._markets[spec.condition_id] = MarketDay()
            md.volume += t.pusd
            if t.fee <= 0:
                continue
            md.fees += t.fee
            acc = md.fee_equivalents
            for mf in t.maker_orders:
                fe = fee_equivalent(spec.fee, mf.matched_amount, mf.price)
                if fe:
                    key = mf.maker_address.lower()
                    acc[key] = acc.get(key, 0) + fe

    # --- the day's end -----------------------------------------------------------------------------

    def _record(self, address: str, payout: Payout) -> None:
        self._payouts.setdefault(address, []).append(payout)

    def _close_day(self, day_end: int) -> None:
        day = day_text(self._day)
        ledger = self._ex.ledger
        specs = {b.spec.condition_id: b.spec for b in self._ex.books.values()}
        for cid, md in sorted(self._markets.items()):
            spec = specs.get(cid)
            if spec is None:
                continue
            cfg = spec.rewards
            if cfg is not None and md.samples:
                for maker, shares in sorted(md.shares.items()):
                    amount = cfg.daily_rate * shares // (md.samples * SHARE_SCALE)
                    if amount >= MIN_PAYOUT:
                        ledger.fund(maker, amount)
                        self._paid[cid] = self._paid.get(cid, 0) + amount
                        self._record(maker, Payout(day, cid, REWARD_ASSET, REWARD, amount, day_end))
            total = sum(md.fee_equivalents.values())
            if md.fees and total:
                share = rebate_share(spec.category)
                pool = md.fees * share.numerator // share.denominator
                owed = self._carried.setdefault(cid, {})
                for maker, fe in md.fee_equivalents.items():
                    amount = pool * fe // total
                    if amount:
                        owed[maker] = owed.get(maker, 0) + amount
        collector = ledger.fee_collector
        for cid in sorted(self._carried):
            owed = self._carried[cid]
            for maker in sorted(owed):
                amount = owed[maker]
                free = collector.pusd - collector.pusd_pending - collector.pusd_reserved
                if amount >= MIN_PAYOUT and amount <= free:
                    ledger.transfer(collector.address, maker, amount)
                    self._record(maker, Payout(day, cid, REWARD_ASSET, MAKER_REBATE, amount, day_end))
                    del owed[maker]
            if not CARRY_UNPAID_REBATES:
                owed.clear()
        self._carried = {cid: owed for cid, owed in self._carried.items() if owed}
        self._markets = {}

    # --- what the endpoints read -----------------------------------------------------------------

    @property
    def day(self) -> str:
        """The UTC day being accumulated."""
        return day_text(self._day)

    def payouts_of(self, address: str) -> list[Payout]:
        """Every payment to `address`, oldest first."""
        return list(self._payouts.get(address.lower(), ()))

    def percentages_of(self, address: str) -> dict[str, Decimal]:
        """The share of each market's rewards `address` is earning today so far, in percent."""
        key = address.lower()
        out: dict[str, Decimal] = {}
        for cid, md in self._markets.items():
            shares = md.shares.get(key, 0)
            if md.samples and shares:
                pct = Fraction(shares * 100, md.samples * SHARE_SCALE)
                out[cid] = (Decimal(pct.numerator) / Decimal(pct.denominator)).quantize(PERCENT_STEP)
        return out

    def paid_rewards(self, condition_id: str) -> int:
        """Liquidity rewards paid in a market so far, micro-pUSD."""
        return self._paid.get(condition_id, 0)

    def volume_today(self, condition_id: str) -> int:
        """pUSD matched in a market since midnight UTC."""
        md = self._markets.get(condition_id)
        return md.volume if md is not None else 0

    def accrued_rebate(self, condition_id: str, address: str) -> int:
        """A maker's rebate owed in a market and not yet paid (below the minimum), micro-pUSD."""
        return self._carried.get(condition_id, {}).get(address.lower(), 0)

    def is_scoring(self, order: Order) -> bool:
        """Whether `order` earns liquidity rewards right now."""
        book = self._ex.books.get(order.market.lower())
        if book is None:
            return False
        spec = book.spec
        cfg = spec.rewards
        if cfg is None or spec.closed or not spec.active or spec.resolved:
            return False
        return rewards.is_scoring(book, cfg, order)

    # --- restarts --------------------------------------------------------------------------------

    def export_state(self) -> IncentivesState:
        version, internal, _ = self._rng.getstate()
        return IncentivesState(
            seed=self._seed,
            rng_version=version,
            rng_state=list(internal),
            minute=self._minute,
            next_sample_ms=self._next_sample,
            day=self._day,
            markets={
                cid: MarketDay(md.samples, dict(md.shares), md.fees, dict(md.fee_equivalents), md.volume)
                for cid, md in self._markets.items()
            },
            carried_rebates={cid: dict(owed) for cid, owed in self._carried.items()},
            payouts={a: list(ps) for a, ps in self._payouts.items()},
            paid_rewards=dict(self._paid),
        )

    def restore_state(self, state: IncentivesState) -> None:
        self._seed = state.seed
        self._rng.setstate((state.rng_version, tuple(state.rng_state), None))
        self._minute = state.minute
        self._next_sample = state.next_sample_ms
        self._day = state.day
        self._markets = {
            cid: MarketDay(md.samples, dict(md.shares), md.fees, dict(md.fee_equivalents), md.volume)
            for cid, md in state.markets.items()
        }
        self._carried = {cid: dict(owed) for cid, owed in state.carried_rebates.items()}
        self._payouts = {a: list(ps) for a, ps in state.payouts.items()}
        self._paid = dict(state.paid_rewards)
