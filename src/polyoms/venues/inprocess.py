"""The in-process venue: the local exchange (`SimService` + `Exchange`) called directly, on its clock.

Backtests and fast tests. The exchange's service layer is used (not the bare matching engine) so that
its fault switches (post-only window, settlement failures), heartbeat dead-man switch and API-key
scoping behave exactly as over sockets. Signature verification is skipped (the orders are ours).

User events: the exchange's listener events for our API key are rendered in the venue's JSON with the
simulator's `ws_render` and decoded by the protocol's `decode_user_frame` — the very path the real user
channel takes — so both venues yield the same typed `OrderEvent` / `TradeEvent`.

Test hooks: `posts` counts POSTs per order hash; `lose_answer_rate` makes the exchange take an order but
lose its answer (the caller gets an unknown outcome, as after a timeout).

Latency (`venues/latency.py`, none by default): requests reach the exchange after the entry latency,
answers come back after the response latency and user events after the market-data latency.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from functools import partial

import msgspec

from polyoms.core.errors import MalformedMessageError, PolyomsError, VenueError
from polyoms.core.user_events import OrderEvent, TradeEvent
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
)
from polyoms.exchange.api import render, ws_render
from polyoms.exchange.api.service import Caller, SimService
from polyoms.exchange.events import Event, ExchangeOrderEvent, ExchangeTradeEvent
from polyoms.polymarket.client import models
from polyoms.polymarket.client.clob import answer_outcome
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol import user_messages
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.polymarket.protocol.wire import decode_order_response
from polyoms.venues import polymarket_orders
from polyoms.venues.latency import LatencyConfig, Link
from polyoms.venues.polymarket_orders import ack, report_of, signed_payload


class InProcessVenue:
    """The Polymarket protocol without sockets (module doc). `builder` signs what `prepare` is given."""

    name = "inprocess"
    settlement = SettlementModel.ON_CHAIN
    expiry_lead_s = GTD_SECURITY_THRESHOLD_S

    def __init__(
        self,
        service: SimService,
        address: str,
        *,
        builder: OrderBuilder | None = None,
        seed: int = 0,
        lose_answer_rate: float = 0.0,
        latency: LatencyConfig | None = None,
    ) -> None:
        self.builder = builder
        self.service = service
        self.exchange = service.exchange
        self.clock = service.clock
        creds = service.create_key(address, 0)
        self.caller = Caller(address, creds)
        self._wallet = address.lower()
        self._sink: UserSink | None = None
        self.posts: Counter[str] = Counter()
        self.lose_answer_rate = lose_answer_rate
        self.rng = random.Random(seed)
        self.heartbeat_id = ""
        self.link = Link(self.clock, latency or LatencyConfig())
        service.add_listener(self._on_exchange_event)

    @property
    def wallet(self) -> str:
        return self._wallet

    @property
    def owner(self) -> str:
        return self.caller.api_key

    # --- user events ------------------------------------------------------------------------------

    def set_user_sink(self, sink: UserSink | None) -> None:
        self._sink = sink

    def _on_exchange_event(self, ev: Event) -> None:
        sink = self._sink
        if sink is None:
            return
        now = self.clock.now_ms()
        key = self.owner
        if isinstance(ev, ExchangeOrderEvent):
            if ev.order.owner != key:
                return
            msg = ws_render.order_event(ev.kind, ev.order, ev.status, ev.size_matched, ev.trade_ids, now)
        elif isinstance(ev, ExchangeTradeEvent):
            t = ev.trade
            if t.owner == key:
                side = "TAKER"
            elif any(m.owner == key for m in t.maker_orders):
                side = "MAKER"
            else:
                return
            msg = ws_render.trade_event(t, ev.status, ev.transaction_hash, side, key, now)
        else:
            return
        for decoded in user_messages.decode_user_frame(msgspec.json.encode(msg)):
            if isinstance(decoded, (OrderEvent, TradeEvent)):
                self.link.deliver(partial(sink, decoded))

    # --- orders -----------------------------------------------------------------------------------

    def prepare(self, request: OrderRequest, instrument: Instrument) -> PreparedOrder:
        if self.builder is None:
            raise ValueError("this in-process venue has no order builder: pass builder=")
        return polymarket_orders.sign(self.builder, request, instrument)

    async def submit(self, orders: Sequence[PreparedOrder]) -> list[SubmitOutcome]:
        if len(orders) > MAX_BATCH:
            raise VenueError(venue_errors.too_many_orders(len(orders), MAX_BATCH), status=400)
        await self.link.send()
        out: list[SubmitOutcome] = []
        for prepared in orders:
            order = signed_payload(prepared)
            self.posts[order.order_id] += 1
            try:
                result = self.service.submit_verified(self.caller, order)
            except PolyomsError as exc:
                out.append(SubmitOutcome(order.order_id, error=exc))
                continue
            if self.lose_answer_rate and self.rng.random() < self.lose_answer_rate:
                out.append(SubmitOutcome(order.order_id, unknown="answer lost"))
                continue
            # Through the venue's JSON, read as the REST client reads it.
            answer = decode_order_response(msgspec.json.encode(render.order_response(result)))
            try:
                read = answer_outcome(answer, order.order_id)
            except MalformedMessageError:
                out.append(SubmitOutcome(order.order_id, unknown="unreadable answer"))
                continue
            if read.placement is None:
                out.append(SubmitOutcome(order.order_id, error=read.error))
                continue
            p = read.placement
            out.append(SubmitOutcome(order.order_id, ack=ack(p.order_id, p.status, p.trade_ids)))
        await self.link.answer()
        return out

    async def cancel(self, orders: Sequence[OrderRef]) -> CancelAnswer:
        await self.link.send()
        r = self.service.cancel(self.caller, [o.key for o in orders])
        await self.link.answer()
        return CancelAnswer(tuple(r.canceled), dict(r.not_canceled))

    async def cancel_all(self) -> CancelAnswer:
        await self.link.send()
        r = self.exchange.cancel_all(self.owner)
        await self.link.answer()
        return CancelAnswer(tuple(r.canceled), dict(r.not_canceled))

    # --- queries ----------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> OrderReport | None:
        o = self.exchange.get_order(order_id)
        if o is None or o.owner != self.owner:
            return None
        return report_of(models.parse_open_order(msgspec.json.decode(msgspec.json.encode(render.open_order(o)))))

    async def open_orders(self) -> list[OrderReport]:
        rows = [render.open_order(o) for o in self.exchange.open_orders(owner=self.owner)]
        data = msgspec.json.decode(msgspec.json.encode(rows))
        return [report_of(models.parse_open_order(d)) for d in data]

    async def trades(self, after_s: int | None = None) -> list[TradeEvent]:
        rows = [render.trade(t, self.owner) for t in self.exchange.trades(owner=self.owner, after=after_s)]
        body = msgspec.json.encode({"limit": len(rows), "count": len(rows), "next_cursor": "LTE=", "data": rows})
        return list(models.decode_trades_page(body).items)

    async def balances(self, token_ids: Sequence[str]) -> tuple[int, dict[str, int]]:
        b = self.exchange.balances(self._wallet)
        return b.pusd, {t: b.token(t).balance for t in token_ids}

    async def heartbeat(self) -> str:
        ok, next_id = self.service.heartbeat(self.caller, self.heartbeat_id or None)
        if not ok:
            self.heartbeat_id = next_id
            raise VenueError(venue_errors.INVALID_HEARTBEAT, status=400, path="/v1/heartbeats")
        self.heartbeat_id = next_id
        return next_id

    async def close(self) -> None:
        self._sink = None
