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


class Harness:
    def __init__(self, markets: Iterable[MarketSpec] = TEST_MARKETS, start_ms: int = START_MS) -> None:
        self.clock = VirtualClock(start_ms)
        self.log = EventLog()
        self.ex = Exchange(tuple(markets), self.clock, listener=self.log)
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

    def check(self) -> None:
        assert audit(self.ex) == []
