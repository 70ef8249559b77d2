"""The Polymarket venue: the async REST client (`ClobClient`), against the real venue or `polyoms sim`.

Submission POSTs each batch exactly once: a typed rejection is a definite refusal; a timeout, a 5xx or an
unreadable answer (`OrderOutcomeUnknownError`) leaves every order of the request unknown.

User events: `follow(stream)` feeds the WebSocket user channel (`polymarket/client/ws_user.UserStream`,
GAPPED until backfilled, de-duplicated) to the sink, and registers every order with it before it is sent so
that a gap can never hide one. Without a stream, `poll_user_events()` turns GET /data/orders +
/data/trades into the same typed `OrderEvent` / `TradeEvent`s (the OMS absorbs repeats), and the engine's
periodic reconciliation covers whatever either misses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from polyoms.core.errors import PolyomsError
from polyoms.core.user_events import TradeEvent
from polyoms.core.venue import (
    MAX_BATCH,
    CancelAnswer,
    Instrument,
    OrderRef,
    OrderReport,
    OrderRequest,
    PreparedOrder,
    SettlementModel,
    SubmitOutcome,
    UserSink,
    order_event_of,
)
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.errors import OrderOutcomeUnknownError
from polyoms.polymarket.client.ws_user import UserStream, UserStreamGapped, UserStreamLive, UserUpdate
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.venues import polymarket_orders
from polyoms.venues.polymarket_orders import ack, report_of, signed_payload


class PolymarketVenue:
    name = polymarket_orders.VENUE
    settlement = SettlementModel.ON_CHAIN
    expiry_lead_s = GTD_SECURITY_THRESHOLD_S

    def __init__(self, client: ClobClient, builder: OrderBuilder | None = None) -> None:
        wallet = client.wallet
        if wallet is None or wallet.creds is None:
            raise ValueError("the client needs a wallet with API credentials")
        self.client = client
        self.builder = builder or wallet.order_builder()
        self._wallet = wallet.maker.lower()
        self._owner = wallet.creds.api_key
        self._sink: UserSink | None = None
        self._stream: UserStream | None = None
        self.posts: Counter[str] = Counter()

    @property
    def wallet(self) -> str:
        return self._wallet

    @property
    def owner(self) -> str:
        return self._owner

    def set_user_sink(self, sink: UserSink | None) -> None:
        self._sink = sink

    def follow(self, stream: UserStream) -> None:
        """Take user events from `stream` (its updates, live or backfilled, go to the sink)."""
        self._stream = stream

        def on_event(event: object) -> None:
            if isinstance(event, UserUpdate) and self._sink is not None:
                self._sink(event.event)

        stream.add_listener(on_event)

    async def poll_user_events(self, after_s: int | None = None) -> int:
        """Push the venue's open orders and trades since `after_s` to the sink; returns how many."""
        sink = self._sink
        if sink is None:
            return 0
        trades = await self.trades(after_s)
        orders = await self.open_orders()
        for t in trades:
            sink(t)
        for o in orders:
            sink(order_event_of(o))
        return len(trades) + len(orders)

    def prepare(self, request: OrderRequest, instrument: Instrument) -> PreparedOrder:
        return polymarket_orders.sign(self.builder, request, instrument)

    async def submit(self, orders: Sequence[PreparedOrder]) -> list[SubmitOutcome]:
        if not orders:
            return []
        if len(orders) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} orders per submission")
        signed = [signed_payload(o) for o in orders]
        if self._stream is not None:
            self._stream.watch_orders(o.key for o in orders)
        for o in orders:
            self.posts[o.key] += 1
        try:
            if len(signed) == 1:
                p = await self.client.post_order(signed[0])
                return [SubmitOutcome(p.order_id, ack=ack(p.order_id, p.status, p.trade_ids))]
            results = await self.client.post_orders(signed)
        except OrderOutcomeUnknownError as exc:
            return [SubmitOutcome(o.key, unknown=exc.reason or "no answer") for o in orders]
        except PolyomsError as exc:
            return [SubmitOutcome(o.key, error=exc) for o in orders]
        out: list[SubmitOutcome] = []
        for r in results:
            if r.placement is not None:
                p = r.placement
                out.append(SubmitOutcome(r.order_id, ack=ack(r.order_id, p.status, p.trade_ids)))
            else:
                out.append(SubmitOutcome(r.order_id, error=r.error))
        return out

    async def cancel(self, orders: Sequence[OrderRef]) -> CancelAnswer:
        r = await self.client.cancel_orders([o.key for o in orders])  # the hash is the venue's id
        return CancelAnswer(r.canceled, r.not_canceled)

    async def cancel_all(self) -> CancelAnswer:
        r = await self.client.cancel_all()
        return CancelAnswer(r.canceled, r.not_canceled)

    async def get_order(self, order_id: str) -> OrderReport | None:
        o = await self.client.get_order(order_id)
        return None if o is None else report_of(o)

    async def open_orders(self) -> list[OrderReport]:
        return [report_of(o) for o in await self.client.open_orders()]

    async def trades(self, after_s: int | None = None) -> list[TradeEvent]:
        return await self.client.trades(after=after_s)

    async def balances(self, token_ids: Sequence[str]) -> tuple[int, dict[str, int]]:
        cash = (await self.client.balance_allowance("COLLATERAL")).balance
        shares = {t: (await self.client.balance_allowance("CONDITIONAL", token_id=t)).balance for t in token_ids}
        return cash, shares

    async def heartbeat(self) -> str:
        return await self.client.heartbeat()

    async def close(self) -> None:
        self._sink = None


def follow_health(stream: UserStream, gapped: Callable[[str], None], recovered: Callable[[], None]) -> None:
    """Tell the OMS of the user stream's continuity: `gapped(reason)` when it loses it (admission closes),
    `recovered()` when it is complete again (the engine reconciles, then reopens admission)."""

    def on_event(event: object) -> None:
        if isinstance(event, UserStreamGapped):
            gapped(event.reason)
        elif isinstance(event, UserStreamLive):
            recovered()

    stream.add_listener(on_event)
