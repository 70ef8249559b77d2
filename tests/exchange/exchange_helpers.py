"""Helpers for the local exchange's tests: a harness with a virtual clock, users and order builders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, to_micro
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder, Exchange, SubmitResult
from polyoms.exchange.events import EventLog
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.markets import MarketSpec, binary_market, neg_risk_event
from polyoms.exchange.settlement import SettlementConfig
from polyoms.exchange.trades import Trade

START_MS = 1_777_000_000_000

PLAIN = binary_market("plain-market", "Plain?")
FEE4 = binary_market("fee-market", "With fees?", fee=FeeCurve("0.04", 1))
FINE = binary_market("fine-market", "Fine tick?", tick="0.001")
NEG_RISK = neg_risk_event("cup", "Will {outcome} win?", ("Alpha", "Beta", "Gamma"))
TEST_MARKETS: tuple[MarketSpec, ...] = (PLAIN, FEE4, FINE, *NEG_RISK)


@dataclass(frozen=True)
class User:
    address: str
    owner: str


def m(text: str) -> int:
    """Micro-units from a decimal string."""
    return to_micro(text)


def ledger_snapshot(ex: Exchange) -> dict[str, object]:
    """Everything the ledger holds, zero entries dropped (a reversal may leave `tokens[t] == 0`)."""
    ledger = ex.ledger

    def nz(d: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in sorted(d.items()) if v}

    return {
        "accounts": {
            a.address: (
                a.pusd,
                a.pusd_reserved,
                a.pusd_pending,
                a.pusd_allowance,
                nz(a.tokens),
                nz(a.token_reserved),
                nz(a.token_pending),
                nz(a.token_allowance),
            )
            for a in ledger
        },
        "locked": nz(ledger.collateral_locked),
        "funded": (ledger.funded_pusd, nz(ledger.funded_tokens)),
    }


class Harness:
    def __init__(
        self,
        markets: Iterable[MarketSpec] = TEST_MARKETS,
        start_ms: int = START_MS,
        settlement: SettlementConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = VirtualClock(start_ms)
        self.log = EventLog()
        self.ex = Exchange(tuple(markets), self.clock, listener=self.log, settlement=settlement, seed=seed)
        self._n = 0
        self._users = 0

    def user(self, pusd: str = "1000", tokens: dict[str, str] | None = None) -> User:
        self._users += 1
        u = User(f"0x{self._users:040x}", f"key-{self._users}")
        self.ex.fund(u.address, m(pusd), {t: m(v) for t, v in (tokens or {}).items()})
        return u

    def next_id(self) -> str:
        self._n += 1
        return f"0x{self._n:064x}"

    def limit_order(
        self,
        u: User,
        token: str,
        side: Side,
        price: str,
        size: str,
        ot: OrderType = OrderType.GTC,
        *,
        expiration: int = 0,
        post_only: bool = False,
        order_id: str | None = None,
    ) -> EngineOrder:
        shares, p = m(size), m(price)
        cash = shares * p // MICRO
        assert cash * MICRO == shares * p, "test orders must have exact amounts"
        maker, taker = (cash, shares) if side is Side.BUY else (shares, cash)
        return EngineOrder(
            order_id or self.next_id(),
            u.address,
            u.owner,
            token,
            side,
            maker,
            taker,
            ot,
            expiration,
            post_only,
            self.clock.now_ms(),
        )

    def limit(self, u: User, token: str, side: Side, price: str, size: str, **kw: object) -> SubmitResult:
        return self.ex.submit(self.limit_order(u, token, side, price, size, **kw))  # type: ignore[arg-type]

    def buy(self, u: User, token: str, price: str, size: str, **kw: object) -> SubmitResult:
        return self.limit(u, token, Side.BUY, price, size, **kw)

    def sell(self, u: User, token: str, price: str, size: str, **kw: object) -> SubmitResult:
        return self.limit(u, token, Side.SELL, price, size, **kw)

    def market_buy(self, u: User, token: str, amount: str, worst: str, ot: OrderType = OrderType.FOK) -> SubmitResult:
        """pUSD-denominated BUY, amounts as the SDK builds them (taker = amount / price, floored)."""
        budget = m(amount)
        return self.ex.submit(
            EngineOrder(self.next_id(), u.address, u.owner, token, Side.BUY, budget, budget * MICRO // m(worst), ot)
        )

    def market_sell(self, u: User, token: str, shares: str, worst: str, ot: OrderType = OrderType.FOK) -> SubmitResult:
        qty = m(shares)
        return self.ex.submit(
            EngineOrder(self.next_id(), u.address, u.owner, token, Side.SELL, qty, qty * m(worst) // MICRO, ot)
        )

    def pusd(self, u: User) -> int:
        return self.ex.balances(u.address).pusd

    def free_pusd(self, u: User) -> int:
        return self.ex.balances(u.address).pusd_available

    def shares(self, u: User, token: str) -> int:
        return self.ex.balances(u.address).token(token).balance

    def advance(self, ms: int) -> None:
        """Move the clock and run the exchange's timers (settlement, GTD expiry)."""
        self.clock.advance(ms)
        self.ex.advance()

    def snapshot(self) -> dict[str, object]:
        return ledger_snapshot(self.ex)

    def check(self) -> None:
        assert audit(self.ex) == []


def signed_flows(t: Trade) -> list[tuple[str, str | None, int]]:
    """(address, token id or None for pUSD, signed change) of every transfer a trade made, read from
    its record alone (independent of the settlement code that reverses it). Fees go to the collector."""
    out: list[tuple[str, str | None, int]] = []
    taker = t.maker_address.lower()
    if t.side is Side.BUY:
        out += [(taker, None, -(t.pusd + t.fee)), (taker, t.asset_id, t.size)]
    else:
        out += [(taker, None, t.pusd - t.fee), (taker, t.asset_id, -t.size)]
    for mf in t.maker_orders:
        mk = mf.maker_address.lower()
        if mf.side is Side.BUY:
            out += [(mk, None, -mf.pusd), (mk, mf.asset_id, mf.matched_amount)]
        else:
            out += [(mk, None, mf.pusd), (mk, mf.asset_id, -mf.matched_amount)]
    return out
