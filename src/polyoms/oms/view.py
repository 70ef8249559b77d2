"""A read-only view of the OMS for strategies and algorithms: positions, reservations, open orders, PnL.

`OmsView` reads an `OmsState` and hands out frozen values only, never a record or ledger of the state,
so whoever holds what it was shown cannot move the OMS. The numbers are the ledger's own (`oms.ledger`):
confirmed and provisional shares, reservations, average cost and realized PnL over CONFIRMED fills, and
unrealized PnL at a mark the caller gives, through `Position.unrealized`; nothing is recomputed here.

Everything is per wallet (the OMS keeps one ledger per wallet); a view has a default wallet, the one it
was given or, when the OMS has a single wallet, that one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING

from polyoms.core.enums import OrderType, Side
from polyoms.core.units import Micro
from polyoms.oms.errors import UnknownOrderError
from polyoms.oms.ledger import Position, WalletLedger
from polyoms.oms.state import WORKING, OrderRecord, OrderState, resting_size

if TYPE_CHECKING:
    from polyoms.oms.oms_state import OmsState


@dataclass(frozen=True, slots=True)
class PositionSummary:
    """One token of one wallet (micro-units). `reserved`: shares locked by open SELLs; `cost`, `avg_price`
    and `realized` by average cost over CONFIRMED fills; `unrealized` at `mark`, None when shares are held
    and there is no mark (0 when flat)."""

    token_id: str
    market: str = ""
    confirmed: Micro = 0
    provisional_in: Micro = 0
    provisional_out: Micro = 0
    reserved: Micro = 0
    sellable: Micro = 0
    cost: Micro = 0
    avg_price: Fraction | None = None
    realized: Micro = 0
    fees: Micro = 0
    mark: Micro | None = None
    unrealized: Micro | None = 0

    @property
    def provisional(self) -> Micro:
        """Net shares in PROVISIONAL fills (bought minus sold)."""
        return self.provisional_in - self.provisional_out

    @property
    def total(self) -> Micro:
        """Confirmed plus provisional: what is held if every provisional fill settles."""
        return self.confirmed + self.provisional


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """One open order as the OMS knows it. `matched` is the larger of what the venue reported and our fills."""

    order_id: str
    token_id: str
    market: str
    side: Side
    order_type: OrderType
    price: Micro
    size: Micro
    matched: Micro
    state: OrderState
    post_only: bool
    ioc: bool
    """FOK/FAK or dollar-sized: it never rests."""
    pending_cancel: bool
    actor: str
    client_tag: str
    created_ms: int
    reserved_cash: Micro
    reserved_shares: Micro

    @property
    def remaining(self) -> Micro:
        left = self.size - self.matched
        return left if left > 0 else 0

    @property
    def in_book(self) -> Micro:
        """Shares of it resting in the book (`state.resting_size`)."""
        return resting_size(self.state, self.ioc, self.size, self.matched)

    @property
    def resting(self) -> bool:
        """Working in the book for what remains (what the book shows of ours)."""
        return self.in_book > 0

    @property
    def cancellable(self) -> bool:
        """Acknowledged, working, no cancel under way: a cancel now reaches an order the venue has."""
        return self.state in WORKING and not self.pending_cancel


@dataclass(frozen=True, slots=True)
class WalletView:
    """One wallet at one instant: pUSD (confirmed `cash`, spendable `available`, `reserved_cash` by open
    BUYs, provisional in/out), positions per token and open orders; totals over its tokens."""

    wallet: str
    cash: Micro
    available: Micro
    reserved_cash: Micro
    provisional_in: Micro
    provisional_out: Micro
    positions: Mapping[str, PositionSummary]
    open_orders: tuple[OrderSummary, ...]

    def position(self, token_id: str) -> PositionSummary:
        """The token's position (a flat one for a token never held)."""
        pos = self.positions.get(token_id)
        return pos if pos is not None else PositionSummary(token_id)

    def orders(self, token_id: str | None = None, side: Side | None = None) -> tuple[OrderSummary, ...]:
        return tuple(
            o
            for o in self.open_orders
            if (token_id is None or o.token_id == token_id) and (side is None or o.side is side)
        )

    @property
    def realized(self) -> Micro:
        return sum(p.realized for p in self.positions.values())

    @property
    def unrealized(self) -> Micro | None:
        """Over every held token; None if one of them has no mark."""
        total = 0
        for p in self.positions.values():
            if p.unrealized is None:
                return None
            total += p.unrealized
        return total

    @property
    def cost(self) -> Micro:
        return sum(p.cost for p in self.positions.values())

    @property
    def fees(self) -> Micro:
        return sum(p.fees for p in self.positions.values())


def position_view(pos: Position, mark: Micro | None) -> PositionSummary:
    if not pos.confirmed:
        unrealized: Micro | None = 0
    else:
        unrealized = pos.unrealized(mark) if mark is not None else None
    return PositionSummary(
        pos.token_id,
        pos.market,
        pos.confirmed,
        pos.prov_in,
        pos.prov_out,
        pos.reserved,
        pos.sellable,
        pos.cost,
        pos.avg_price(),
        pos.realized,
        pos.fees,
        mark,
        unrealized,
    )


def order_view(o: OrderRecord) -> OrderSummary:
    return OrderSummary(
        o.order_id,
        o.token_id,
        o.market,
        o.side,
        o.order_type,
        o.price,
        o.size,
        o.matched,
        o.state,
        o.post_only,
        o.is_ioc,
        o.pending_cancel,
        o.actor,
        o.client_tag,
        o.created_ms,
        o.reserved_cash,
        o.reserved_shares,
    )


class OmsView:
    """Read-only access to an OmsState (module doc). `wallet`: the default wallet of every call."""

    __slots__ = ("_state", "wallet")

    def __init__(self, state: OmsState, wallet: str | None = None) -> None:
        self._state = state
        self.wallet = wallet.lower() if wallet is not None else None

    def wallets(self) -> tuple[str, ...]:
        return tuple(self._state.ledgers)

    def _ledger(self, wallet: str | None) -> WalletLedger:
        name = wallet.lower() if wallet is not None else self.wallet
        ledgers = self._state.ledgers
        if name is None:
            if len(ledgers) != 1:
                raise ValueError(f"the OMS has {len(ledgers)} wallets: name one")
            return next(iter(ledgers.values()))
        lg = ledgers.get(name)
        if lg is None:
            raise UnknownOrderError(f"unknown wallet {name}", wallet=name)
        return lg

    def position(self, token_id: str, mark: Micro | None = None, *, wallet: str | None = None) -> PositionSummary:
        pos = self._ledger(wallet).positions.get(token_id)
        return position_view(pos, mark) if pos is not None else PositionSummary(token_id, mark=mark)

    def open_orders(self, token_id: str | None = None, *, wallet: str | None = None) -> tuple[OrderSummary, ...]:
        name = self._ledger(wallet).wallet
        return tuple(order_view(o) for o in self._state.open_orders(name) if token_id is None or o.token_id == token_id)

    def snapshot(self, marks: Mapping[str, Micro] | None = None, *, wallet: str | None = None) -> WalletView:
        """The wallet now, its positions valued at `marks` (token → micro pUSD per share)."""
        lg = self._ledger(wallet)
        at = marks or {}
        positions = {t: position_view(p, at.get(t)) for t, p in lg.positions.items()}
        return WalletView(
            lg.wallet,
            lg.cash,
            lg.available,
            lg.reserved,
            lg.prov_in,
            lg.prov_out,
            MappingProxyType(positions),
            tuple(order_view(o) for o in self._state.open_orders(lg.wallet)),
        )
