"""Fills: which legs of a trade are ours, their three tiers, and the fee rule.

A fill is keyed by (trade id, our order id): one trade can fill several of our orders (we were maker
with two orders, or taker and maker at once — a self-trade), and every status change re-sends the whole
trade with the same id. Its tier follows the trade status (architecture principle 3, `TIER`); which legs
are ours and what each moved is decided in `legs_of`; cash is rounded per maker fill in the maker's
favour (`maker_cash`); `taker_fee` is the one fee rule.
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

import msgspec

from polyoms.core.enums import Side
from polyoms.core.fees import MAX_FEE_RATE_BPS, UNKNOWN_RATE_BOUND_BPS, curve_fee
from polyoms.core.units import MICRO, Micro
from polyoms.core.user_events import TradeEvent, TraderSide, TradeStatus


class FillTier(StrEnum):
    """MATCHED / MATCHED_NOT_BROADCASTED / MINED / RETRYING = PROVISIONAL, CONFIRMED = CONFIRMED (final),
    FAILED = VOIDED (final; whatever it moved is restored)."""

    PROVISIONAL = "PROVISIONAL"
    CONFIRMED = "CONFIRMED"
    VOIDED = "VOIDED"


class Role(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"


TS = TradeStatus
TIER: Final[dict[TradeStatus, FillTier]] = {
    TS.MATCHED: FillTier.PROVISIONAL,
    TS.MATCHED_NOT_BROADCASTED: FillTier.PROVISIONAL,
    TS.MINED: FillTier.PROVISIONAL,
    TS.RETRYING: FillTier.PROVISIONAL,
    TS.CONFIRMED: FillTier.CONFIRMED,
    TS.FAILED: FillTier.VOIDED,
}

# Progress of a trade: a status ranked below the fill's current one is a stale re-delivery. MINED and
# RETRYING share a rank: a retry can follow a mined transaction that reverted, and be mined again.
STATUS_RANK: Final[dict[TradeStatus, int]] = {
    TS.MATCHED: 0,
    TS.MATCHED_NOT_BROADCASTED: 0,
    TS.MINED: 1,
    TS.RETRYING: 1,
    TS.CONFIRMED: 2,
    TS.FAILED: 2,
}

# --- fees ------------------------------------------------------------------------------------------

_HALF: Final = MICRO // 2


def taker_fee(shares: Micro, price: Micro, cash: Micro, fee_rate_bps: int | None, exponent: int = 1) -> Micro:
    """What a taker pays for a fill, in pUSD micro-units: the one fee rule (`core.fees.curve_fee`) with
    r = fee_rate_bps / 10,000 (the trade's `fee_rate_bps` is the rate the venue applied; the exponent e is
    the market's, from its fee schedule, 1 when not known). Assumptions, since the user channel carries
    no fee amount: the platform fee only — builder fees are not modelled —, and makers pay nothing (V2
    markets are taker-only). A BUY pays it on top of `cash`; a SELL has it taken from its proceeds.
    """
    if not fee_rate_bps:
        return 0
    return curve_fee(Fraction(fee_rate_bps, 10_000), exponent, shares, price, cash)


def fee_allowance(
    *, shares: Micro, price: Micro, cash: Micro, notional: bool, fee_rate_bps: int | None, exponent: int
) -> Micro:
    """An upper bound of the fee a BUY that may still spend `cash` (for `shares` at a limit `price`)
    can owe: reserved on top of the order's pUSD so the fee is always covered.

    Unknown rate (None): `core.fees.UNKNOWN_RATE_BOUND_BPS` of `cash`. Otherwise the curve at the worst
    fill price for the fee — fills happen at or below the limit and p(1 − p) peaks at 0.5 — rounded up;
    for a dollar-sized BUY (shares unknown) `cash × r`, since p^(e−1)(1 − p)^e ≤ 1; and never above the
    contract's ceiling.
    """
    if fee_rate_bps is None:
        return -(-cash * UNKNOWN_RATE_BOUND_BPS // 10_000)
    cap = -(-cash * MAX_FEE_RATE_BPS // 10_000)
    if fee_rate_bps == 0 or cash <= 0:
        return 0
    if notional:
        bound = -(-cash * fee_rate_bps // 10_000)
    else:
        p = price if price < _HALF else _HALF
        num = shares * fee_rate_bps * (p * (MICRO - p)) ** exponent
        bound = -(-num // (10_000 * (MICRO * MICRO) ** exponent))
    return bound if bound < cap else cap


# --- legs and fills --------------------------------------------------------------------------------


def maker_cash(side: Side, price: Micro, size: Micro) -> Micro:
    """pUSD of a maker fill, rounded in the maker's favour.

    A product that is not a whole number of micro-units (only sizes with more than 2 decimals, from
    dollar-sized market orders, make one) is rounded per maker fill in the maker's favour — a maker BUY
    pays the floor, a maker SELL receives the ceiling — and so against the taker (its BUY pays Σ
    ceilings, its SELL receives Σ floors, `taker_cash`): the exchange derives the taker's side from the
    makers' fills, and the local exchange settles exactly so. Any other rounding at the venue shows up
    as a sub-micro CASH_DRIFT in reconciliation.
    """
    if side is Side.BUY:
        return price * size // MICRO
    return -(-price * size // MICRO)


def taker_cash(side: Side, price: Micro, size: Micro) -> Micro:
    """pUSD of (part of) a taker fill, rounded against the taker (`maker_cash`)."""
    if side is Side.BUY:
        return -(-price * size // MICRO)
    return price * size // MICRO


class Leg(msgspec.Struct, frozen=True, gc=False):
    """Our part of one trade: one of our orders, from its own point of view."""

    order_id: str
    role: Role
    token_id: str
    side: Side
    price: Micro
    size: Micro
    cash: Micro
    fee: Micro
    wallet: str


class Fill(msgspec.Struct, array_like=True, gc=False):
    """A fill as the ledgers know it; `status` is the latest trade status applied."""

    trade_id: str
    order_id: str
    wallet: str
    market: str
    token_id: str
    side: Side
    role: Role
    price: Micro
    size: Micro
    cash: Micro
    fee: Micro
    status: TradeStatus
    tier: FillTier
    first_ms: int
    updated_ms: int
    match_time: int | None = None
    seq: int = 0
    no: int = 0
    """Ordinal of the fill in this OMS (creation order; the journal's row key)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.trade_id, self.order_id)

    @property
    def cash_delta(self) -> Micro:
        """What this fill does to pUSD: a BUY pays cash + fee, a SELL receives cash − fee."""
        if self.side is Side.BUY:
            return -(self.cash + self.fee)
        return self.cash - self.fee

    @property
    def share_delta(self) -> Micro:
        return self.size if self.side is Side.BUY else -self.size


class Identity(msgspec.Struct, frozen=True):
    """How to recognize our legs: API-key owners and funder addresses (lower case), per wallet."""

    owners: dict[str, str] = msgspec.field(default_factory=dict)
    """API-key owner → wallet (funder address, lower case)."""
    addresses: frozenset[str] = frozenset()
    seen: dict[str, str | None] = msgspec.field(default_factory=dict)
    """Cache: an address as spelled on the wire → our wallet, or None (most are other users': the
    lookup would otherwise lower-case every maker's address of every trade)."""

    def wallet_of_address(self, raw: str) -> str | None:
        seen = self.seen
        if raw in seen:
            return seen[raw]
        low = raw.lower()
        wallet = low if low in self.addresses else None
        if len(seen) < 100_000:
            seen[raw] = wallet
        return wallet


_UNSEEN: Final[Any] = object()


def legs_of(
    ev: TradeEvent,
    order_wallet: dict[str, str],
    identity: Identity,
    fee_exponent: int = 1,
    default_wallet: str | None = None,
) -> tuple[list[Leg], list[str]]:
    """Our legs of `ev` and the reasons for any part we could not attribute.

    `order_wallet` maps every order id we know to its wallet. `default_wallet` is used for a leg that
    is ours but names no wallet we know (only sensible with a single wallet).

    Attribution (doc §6.3, §4.7; the recorded fixtures confirm the field meanings):
    * top-level `side / price / size / asset_id` are the taker's; the top-level `maker_address` is the
      taker order's funder (in every recorded trade where we were a maker it is someone else's address);
    * a maker entry is ours if its `order_id` is one of our orders, or its `maker_address` is one of our
      funders, or its `owner` is one of our API keys (in that order: that is also how its wallet is
      found); it is read from its own entry: its token, its price, its `matched_amount` — in a
      MINT/MERGE that is the complementary token (our BUY NO at 0.482 filled against a taker BUY YES at
      0.518 is a fill of NO at 0.482). Older messages omit the maker's `side`: same token → the taker's
      opposite side; complementary token → the taker's side (MINT: both BUY, MERGE: both SELL);
    * the taker is ours if `trader_side` is TAKER (the venue says so), or `taker_order_id` is one of our
      orders, or the top-level `maker_address` is one of our funders — both can hold (self-trade).

    Cash of a fill, in pUSD micro-units before fees: a maker's is `price × matched_amount`; a taker's is
    the sum over the makers at their prices (a complementary maker's price p is 1 − p for the taker:
    executions happen at the makers' prices, the taker keeps any improvement), or `price × size` when
    the maker list does not add up to the taker's size; rounded as `maker_cash` says.
    """
    legs: list[Leg] = []
    problems: list[str] = []
    owners = identity.owners
    seen = identity.seen
    wallet_of_address = identity.wallet_of_address
    taker_token = ev.asset_id
    taker_side = ev.side
    makers_total = 0
    for m in ev.maker_orders:
        makers_total += m.matched_amount
        wallet = order_wallet.get(m.order_id)
        if wallet is None:
            # The funder address names the wallet exactly; an API key may trade several funders.
            address = m.maker_address
            if address:
                wallet = seen.get(address, _UNSEEN)
                if wallet is _UNSEEN:
                    wallet = wallet_of_address(address)
            if wallet is None and m.owner:
                wallet = owners.get(m.owner)
            if wallet is None:
                continue
        if m.matched_amount <= 0:
            continue
        side = m.side
        if side is None:
            side = taker_side.opposite if m.asset_id == taker_token else taker_side
        cash = maker_cash(side, m.price, m.matched_amount)
        legs.append(Leg(m.order_id, Role.MAKER, m.asset_id, side, m.price, m.matched_amount, cash, 0, wallet))

    taker_wallet = order_wallet.get(ev.taker_order_id)
    if taker_wallet is None and ev.maker_address:
        taker_wallet = wallet_of_address(ev.maker_address)
    if taker_wallet is None and ev.trader_side is TraderSide.TAKER:
        taker_wallet = owners.get(ev.owner) or owners.get(ev.trade_owner) or default_wallet
        if taker_wallet is None:
            problems.append(f"trade {ev.id}: we are the taker but no wallet is known for it")
    if taker_wallet is not None and ev.size > 0:
        if makers_total == ev.size:
            # What the taker pays / receives: Σ over all makers at their prices.
            cash = 0
            for m in ev.maker_orders:
                price = m.price if m.asset_id == taker_token else MICRO - m.price
                cash += taker_cash(taker_side, price, m.matched_amount)
        else:
            cash = taker_cash(taker_side, ev.price, ev.size)
        fee = taker_fee(ev.size, ev.price, cash, ev.fee_rate_bps, fee_exponent)
        legs.append(
            Leg(ev.taker_order_id, Role.TAKER, taker_token, taker_side, ev.price, ev.size, cash, fee, taker_wallet)
        )
    elif ev.trader_side is TraderSide.MAKER and not legs:
        problems.append(f"trade {ev.id}: the venue says we are a maker but no maker entry is ours")
    if len(legs) > 1 and len({leg.order_id for leg in legs}) < len(legs):
        legs = _merge_same_order(legs)
    return legs, problems


def _merge_same_order(legs: list[Leg]) -> list[Leg]:
    """One leg per order: an order listed twice in one trade is one fill (the key is trade + order)."""
    merged: dict[str, Leg] = {}
    for leg in legs:
        seen = merged.get(leg.order_id)
        if seen is None:
            merged[leg.order_id] = leg
        else:
            merged[leg.order_id] = msgspec.structs.replace(
                seen, size=seen.size + leg.size, cash=seen.cash + leg.cash, fee=seen.fee + leg.fee
            )
    return list(merged.values())
