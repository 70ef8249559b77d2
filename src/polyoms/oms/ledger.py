"""Per-wallet ledgers: pUSD and positions in three tiers, reservations, average cost and PnL.

Everything is an integer number of micro-units (pUSD, shares); a price average is an exact Fraction
and every division is rounded explicitly (half to even) where it happens. Amounts are held in tiers —
confirmed, provisional in and out, reserved by open orders — so that only what can no longer be voided
is spent or sold: `WalletLedger` holds a wallet's pUSD, `Position` its shares of one token, and
`reservation` says what an open order locks. Average cost and PnL count CONFIRMED fills only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Final

import msgspec

from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro
from polyoms.oms.fills import Fill, FillTier, fee_allowance
from polyoms.oms.state import TERMINAL, OrderRecord


def div_round(num: int, den: int) -> int:
    """num / den rounded half to even (den > 0)."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2 == 1):
        q += 1
    return q


def mid_mark(bid: Micro | None, ask: Micro | None) -> Micro | None:
    """Mark-to-market price: the mid of the best bid and ask (half to even at a micro), None unless both
    sides are quoted. A one-sided book has no fair mid (its lone side may be far from any trade)."""
    if bid is None or ask is None:
        return None
    return div_round(bid + ask, 2)


class Position(msgspec.Struct, array_like=True, gc=False):
    """A wallet's shares of one token, in tiers, with its average cost and PnL.

    confirmed  base + Σ share deltas of CONFIRMED fills
    prov_in / prov_out   shares bought / sold in PROVISIONAL fills
    reserved   locked by open SELL orders (remaining shares)
    sellable   = confirmed − prov_out − reserved (provisional buys are not sellable)

    Sellable-now is deliberately conservative. The venue lets bought shares be sold once the trade is
    MINED (the local exchange models the same "pending until mined" rule), but a mined trade can still
    be retried and fail; counting only CONFIRMED shares means a sell can never outrun a fill that is
    later voided. The cost is latency: a market maker waits for CONFIRMED before re-selling what it
    just bought.

    Average cost, realized and unrealized PnL are computed over CONFIRMED fills only (a provisional
    fill may still be voided), in confirmation order, with fees in the cost (BUY) or deducted from
    proceeds (SELL). `cost` is signed like the position; at every step Σ cash deltas = realized − cost
    exactly. Mark-to-market values the confirmed shares at a mark with one rounding rule (`value`, half
    to even): unrealized = value − cost. The mark is the book's mid (`mid_mark`); the liquidation value
    takes the side the position would close into (`liquidation_mark`: a long sells at the bid).
    """

    token_id: str
    market: str = ""
    base: Micro = 0
    """Shares from balance snapshots and adjustments (not from fills)."""
    confirmed: Micro = 0
    prov_in: Micro = 0
    prov_out: Micro = 0
    reserved: Micro = 0
    cost: Micro = 0
    realized: Micro = 0
    fees: Micro = 0

    @property
    def total(self) -> Micro:
        """Confirmed plus provisional: what we hold if every provisional fill settles."""
        return self.confirmed + self.prov_in - self.prov_out

    @property
    def sellable(self) -> Micro:
        return self.confirmed - self.prov_out - self.reserved

    def avg_price(self) -> Fraction | None:
        """Average cost in pUSD per share of the confirmed position (fees included); None when flat."""
        if not self.confirmed:
            return None
        return Fraction(self.cost, self.confirmed)

    def value(self, mark: Micro) -> Micro:
        """The confirmed position valued at `mark` (micro pUSD per share): the one rounding rule of
        mark-to-market (half to even), shared by `unrealized` and every view of a position's worth."""
        return div_round(self.confirmed * mark, MICRO)

    def unrealized(self, mark: Micro) -> Micro:
        """PnL of the confirmed position at `mark` (micro pUSD per share, the caller's)."""
        return self.value(mark) - self.cost

    def liquidation_mark(self, bid: Micro | None, ask: Micro | None) -> Micro | None:
        """The price the confirmed position would close at now: a long sells into the best bid; a short
        (negative shares, which only a drift repair can leave: tokens cannot be borrowed) buys back at
        the best ask. None when that side of the book is empty (or flat)."""
        if self.confirmed > 0:
            return bid
        if self.confirmed < 0:
            return ask
        return None

    def book(self, qty: Micro, flow: Micro) -> None:
        """A confirmed change of `qty` shares (signed) against `flow` pUSD (signed cash delta)."""
        q0 = self.confirmed
        if q0 == 0 or (q0 > 0) == (qty > 0):
            self.confirmed = q0 + qty
            self.cost -= flow
            return
        held, moved = abs(q0), abs(qty)
        closing = held if held < moved else moved
        released = self.cost if closing == held else div_round(self.cost * closing, held)
        flow_close = flow if closing == moved else div_round(flow * closing, moved)
        self.realized += flow_close - released
        self.cost -= released
        step = closing if qty > 0 else -closing
        self.confirmed = q0 + step
        if closing < moved:  # crosses zero: the rest opens a position the other way
            self.confirmed += qty - step
            self.cost -= flow - flow_close


class WalletLedger(msgspec.Struct, gc=False):
    """One wallet's pUSD, in tiers, and its positions.

    cash       confirmed balance: funding/adjustments (`base`) + Σ cash deltas of CONFIRMED fills
    prov_out   owed by PROVISIONAL BUY fills (their cash + fee)
    prov_in    due from PROVISIONAL SELL fills (their cash − fee)
    reserved   locked by open BUY orders: remaining shares × limit price, plus a fee allowance
    available  = cash − reserved − prov_out      (provisional proceeds are not spendable)
    """

    wallet: str
    base: Micro = 0
    """pUSD from balance snapshots and adjustments (not from fills)."""
    cash: Micro = 0
    prov_out: Micro = 0
    prov_in: Micro = 0
    reserved: Micro = 0
    positions: dict[str, Position] = msgspec.field(default_factory=dict)

    @property
    def available(self) -> Micro:
        return self.cash - self.reserved - self.prov_out

    def position(self, token_id: str, market: str = "") -> Position:
        pos = self.positions.get(token_id)
        if pos is None:
            pos = self.positions[token_id] = Position(token_id, market)
        elif market and not pos.market:
            pos.market = market
        return pos

    def sellable(self, token_id: str) -> Micro:
        pos = self.positions.get(token_id)
        return pos.sellable if pos is not None else 0

    def realized(self) -> Micro:
        return sum(p.realized for p in self.positions.values())

    def unrealized(self, marks: Mapping[str, Micro]) -> Micro:
        return sum(p.unrealized(marks[t]) for t, p in self.positions.items() if p.confirmed and t in marks)

    # --- mutations (by OmsState only) --------------------------------------------------------------

    def add_fill(self, f: Fill) -> Position:
        """A new PROVISIONAL or CONFIRMED fill (a VOIDED one never touches the ledger)."""
        pos = self.position(f.token_id, f.market)
        if f.tier is FillTier.CONFIRMED:
            self._confirm(f, pos)
        elif f.side is Side.BUY:
            self.prov_out += f.cash + f.fee
            pos.prov_in += f.size
        else:
            self.prov_in += f.cash - f.fee
            pos.prov_out += f.size
        return pos

    def confirm(self, f: Fill) -> Position:
        """PROVISIONAL → CONFIRMED."""
        pos = self.position(f.token_id, f.market)
        self._unprovision(f, pos)
        self._confirm(f, pos)
        return pos

    def void(self, f: Fill) -> Position:
        """PROVISIONAL → VOIDED: the fill's provisional cash and shares disappear, nothing else moved."""
        pos = self.position(f.token_id, f.market)
        self._unprovision(f, pos)
        return pos

    def _unprovision(self, f: Fill, pos: Position) -> None:
        if f.side is Side.BUY:
            self.prov_out -= f.cash + f.fee
            pos.prov_in -= f.size
        else:
            self.prov_in -= f.cash - f.fee
            pos.prov_out -= f.size

    def _confirm(self, f: Fill, pos: Position) -> None:
        flow = f.cash_delta
        self.cash += flow
        pos.fees += f.fee
        pos.book(f.share_delta, flow)

    def adjust_cash(self, delta: Micro) -> None:
        self.base += delta
        self.cash += delta

    def adjust_shares(self, token_id: str, delta: Micro, market: str = "") -> Position:
        """Shares that appear or vanish outside any fill (snapshot, transfer, drift repair): booked at
        zero value, so vanished shares realize their average cost as a loss."""
        pos = self.position(token_id, market)
        pos.base += delta
        pos.book(delta, 0)
        return pos


def reservation(o: OrderRecord) -> tuple[Micro, Micro]:
    """(pUSD, shares) that order `o` locks right now.

    The venue's rule (doc §4.9: size − matched of every open order, pUSD at the limit price for BUYs,
    shares for SELLs), taking "matched" as the larger of what the user channel's order events and our
    own fills say (whichever arrives first releases it, and the fill moves the money into
    `prov_out`/`prov_in` at the same time). On top of a BUY's pUSD the fee allowance of
    `fills.fee_allowance`; post-only orders never take and reserve no fee. An order finished by an
    acknowledgement whose fills have not arrived yet keeps its reservation until they do.
    """
    if o.state in TERMINAL and not o.awaiting_fills:
        return 0, 0
    if o.side is Side.SELL:
        left = o.maker_amount - o.matched
        return 0, left if left > 0 else 0
    if o.notional:
        cash = o.maker_amount - o.filled_cash
        if cash <= 0:
            return 0, 0
        shares = 0
    else:
        shares = o.size - o.matched
        if shares <= 0:
            return 0, 0
        cash = -(-shares * o.price // MICRO)
    if o.post_only:
        return cash, 0
    fee = fee_allowance(
        shares=shares,
        price=o.price,
        cash=cash,
        notional=o.notional,
        fee_rate_bps=o.fee_rate_bps,
        exponent=o.fee_exponent,
    )
    return cash + fee, 0


# --- invariants ----------------------------------------------------------------------------------

_FINAL_TIERS: Final = (FillTier.CONFIRMED, FillTier.VOIDED)


def check_invariants(
    ledgers: Mapping[str, WalletLedger], orders: Iterable[OrderRecord], fills: Iterable[Fill]
) -> list[str]:
    """Everything that must hold between orders, fills and ledgers; [] when all do.

    Recomputes every derived quantity from scratch and compares it with the incrementally kept one.
    """
    problems: list[str] = []
    add = problems.append
    exp_cash: dict[str, int] = {w: lg.base for w, lg in ledgers.items()}
    exp_prov_out: dict[str, int] = dict.fromkeys(ledgers, 0)
    exp_prov_in: dict[str, int] = dict.fromkeys(ledgers, 0)
    exp_reserved: dict[str, int] = dict.fromkeys(ledgers, 0)
    exp_conf: dict[tuple[str, str], int] = {}
    exp_pin: dict[tuple[str, str], int] = {}
    exp_pout: dict[tuple[str, str], int] = {}
    exp_pres: dict[tuple[str, str], int] = {}
    flows: dict[tuple[str, str], int] = {}
    for w, lg in ledgers.items():
        for t, pos in lg.positions.items():
            exp_conf[(w, t)] = pos.base
    by_order: dict[str, list[Fill]] = {}
    for f in fills:
        by_order.setdefault(f.order_id, []).append(f)
        if f.wallet not in ledgers:
            add(f"fill {f.key}: wallet {f.wallet} has no ledger")
            continue
        k = (f.wallet, f.token_id)
        if f.size <= 0 or f.cash < 0 or f.fee < 0:
            add(f"fill {f.key}: size {f.size}, cash {f.cash}, fee {f.fee}")
        if f.tier is FillTier.CONFIRMED:
            exp_cash[f.wallet] += f.cash_delta
            exp_conf[k] = exp_conf.get(k, 0) + f.share_delta
            flows[k] = flows.get(k, 0) + f.cash_delta
        elif f.tier is FillTier.PROVISIONAL:
            if f.side is Side.BUY:
                exp_prov_out[f.wallet] += f.cash + f.fee
                exp_pin[k] = exp_pin.get(k, 0) + f.size
            else:
                exp_prov_in[f.wallet] += f.cash - f.fee
                exp_pout[k] = exp_pout.get(k, 0) + f.size
    for o in orders:
        if o.wallet not in ledgers:
            add(f"order {o.order_id}: wallet {o.wallet} has no ledger")
            continue
        cash, shares = reservation(o)
        if (o.reserved_cash, o.reserved_shares) != (cash, shares):
            add(f"order {o.order_id}: reserves ({o.reserved_cash}, {o.reserved_shares}), expected ({cash}, {shares})")
        if cash < 0 or shares < 0:
            add(f"order {o.order_id}: negative reservation ({cash}, {shares})")
        if o.state in TERMINAL and not o.awaiting_fills and (cash or shares):
            add(f"order {o.order_id}: terminal {o.state} but reserves ({cash}, {shares})")
        exp_reserved[o.wallet] += o.reserved_cash
        if o.reserved_shares:
            k = (o.wallet, o.token_id)
            exp_pres[k] = exp_pres.get(k, 0) + o.reserved_shares
        live = [f for f in by_order.get(o.order_id, ()) if f.tier is not FillTier.VOIDED]
        filled = sum(f.size for f in live)
        if filled != o.filled or sum(f.cash for f in live) != o.filled_cash or sum(f.fee for f in live) != o.fees:
            add(f"order {o.order_id}: filled {o.filled}/{o.filled_cash}/{o.fees} != its non-voided fills")
        voided = sum(f.size for f in by_order.get(o.order_id, ()) if f.tier is FillTier.VOIDED)
        if voided != o.voided:
            add(f"order {o.order_id}: voided {o.voided} != {voided}")
        # Audit trail: complete (starts at creation, ends in the current state) and never back in time.
        h = o.history
        if not h or h[0].from_state is not None:
            add(f"order {o.order_id}: audit trail does not start with its creation")
        elif h[-1].to_state is not o.state:
            add(f"order {o.order_id}: audit trail ends in {h[-1].to_state}, state is {o.state}")
        for a, b in itertools.pairwise(h):
            if b.ts_ms < a.ts_ms:
                add(f"order {o.order_id}: audit timestamps go back ({a.ts_ms} -> {b.ts_ms})")
            if b.from_state is not a.to_state:
                add(f"order {o.order_id}: audit trail gap ({a.to_state} then from {b.from_state})")
            if a.to_state in TERMINAL and b.to_state is not a.to_state:
                add(f"order {o.order_id}: left terminal state {a.to_state}")
    for w, lg in ledgers.items():
        if lg.cash != exp_cash[w]:
            add(f"wallet {w}: cash {lg.cash} != base + confirmed fills {exp_cash[w]}")
        if lg.prov_out != exp_prov_out[w] or lg.prov_in != exp_prov_in[w]:
            add(f"wallet {w}: provisional ({lg.prov_out}, {lg.prov_in}) != ({exp_prov_out[w]}, {exp_prov_in[w]})")
        if lg.reserved != exp_reserved[w] or lg.reserved < 0:
            add(f"wallet {w}: reserved {lg.reserved} != Σ open orders {exp_reserved[w]}")
        if lg.available != lg.cash - lg.reserved - lg.prov_out:
            add(f"wallet {w}: available is not cash − reserved − provisional outflows")
        for t, pos in lg.positions.items():
            k = (w, t)
            if pos.confirmed != exp_conf.get(k, 0):
                add(f"wallet {w} token {t}: confirmed {pos.confirmed} != base + fills {exp_conf.get(k, 0)}")
            if pos.prov_in != exp_pin.get(k, 0) or pos.prov_out != exp_pout.get(k, 0):
                add(f"wallet {w} token {t}: provisional shares ({pos.prov_in}, {pos.prov_out}) do not match fills")
            if pos.reserved != exp_pres.get(k, 0) or pos.reserved < 0:
                add(f"wallet {w} token {t}: reserved {pos.reserved} != Σ open SELLs {exp_pres.get(k, 0)}")
            if pos.confirmed == 0 and pos.cost != 0:
                add(f"wallet {w} token {t}: flat but cost basis {pos.cost}")
            if flows.get(k, 0) != pos.realized - pos.cost:
                add(f"wallet {w} token {t}: confirmed cash flows {flows.get(k, 0)} != realized − cost")
        for (w2, t), q in exp_pres.items():
            if w2 == w and t not in lg.positions and q:
                add(f"wallet {w} token {t}: SELL orders reserve {q} shares of a token without a position")
    return problems
