"""The in-process venue: the local exchange (`SimService` + `Exchange`) called directly, on its clock.

Backtests and fast tests. The exchange's service layer is used (not the bare matching engine) so that
its fault switches (post-only window, settlement failures), heartbeat dead-man switch and API-key
scoping behave exactly as over sockets. Signature verification is skipped (the orders are ours).

User events: the exchange's listener events for our API key are rendered in the venue's JSON with the
simulator's `ws_render` and decoded by the protocol's `decode_user_frame` — the very path the real user
channel takes — so both venues yield the same typed `OrderEvent` / `TradeEvent`.

Test hooks: `posts` counts POSTs per order hash; `lose_answer_rate` makes the exchange take an order but
lose its answer (the caller gets an unknown outcome, as after a timeout).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import msgspec

from polyoms.core.errors import PolyomsError, VenueError
from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.exchange.api import render, ws_render
from polyoms.exchange.api.service import Caller, SimService
from polyoms.exchange.events import Event
from polyoms.exchange.events import OrderEvent as XOrderEvent
from polyoms.exchange.events import TradeEvent as XTradeEvent
from polyoms.oms.reconcile import VenueOrder
from polyoms.polymarket.client import models
from polyoms.polymarket.protocol import user_messages
from polyoms.polymarket.protocol.order import SignedOrder
from polyoms.polymarket.protocol.wire import decode_order_response
from polyoms.venues.base import MAX_BATCH, CancelAnswer, SubmitOutcome, UserSink, from_open_order


class InProcessVenue:
    def __init__(self, service: SimService, address: str, *, seed: int = 0, lose_answer_rate: float = 0.0) -> None:
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
        if isinstance(ev, XOrderEvent):
            if ev.order.owner != key:
                return
            msg = ws_render.order_event(ev.kind, ev.order, ev.status, ev.size_matched, ev.trade_ids, now)
        elif isinstance(ev, XTradeEvent):
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
                sink(decoded)

    # --- orders -----------------------------------------------------------------------------------

    async def submit(self, orders: Sequence[SignedOrder]) -> list[SubmitOutcome]:
        if len(orders) > MAX_BATCH:
            raise VenueError(f"Too many orders in payload: {len(orders)}, max allowed: {MAX_BATCH}", status=400)
        out: list[SubmitOutcome] = []
        for order in orders:
            self.posts[order.order_id] += 1
            try:
                result = self.service.submit_verified(self.caller, order)
            except PolyomsError as exc:
                out.append(SubmitOutcome(order.order_id, error=exc))
                continue
            if self.lose_answer_rate and self.rng.random() < self.lose_answer_rate:
                out.append(SubmitOutcome(order.order_id, unknown="answer lost"))
                continue
            response = decode_order_response(msgspec.json.encode(render.order_response(result)))
            out.append(SubmitOutcome(order.order_id, response=response))
        return out

    async def cancel(self, order_ids: Sequence[str]) -> CancelAnswer:
        r = self.service.cancel(self.caller, list(order_ids))
        return CancelAnswer(tuple(r.canceled), dict(r.not_canceled))

    async def cancel_all(self) -> CancelAnswer:
        r = self.exchange.cancel_all(self.owner)
        return CancelAnswer(tuple(r.canceled), dict(r.not_canceled))

    # --- queries ----------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> VenueOrder | None:
        o = self.exchange.get_order(order_id)
        if o is None or o.owner != self.owner:
            return None
        return from_open_order(models.parse_open_order(msgspec.json.decode(msgspec.json.encode(render.open_order(o)))))

    async def open_orders(self) -> list[VenueOrder]:
        rows = [render.open_order(o) for o in self.exchange.open_orders(owner=self.owner)]
        data = msgspec.json.decode(msgspec.json.encode(rows))
        return [from_open_order(models.parse_open_order(d)) for d in data]

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
            raise VenueError("Invalid Heartbeat ID", status=400, path="/v1/heartbeats")
        self.heartbeat_id = next_id
        return next_id

    async def close(self) -> None:
        self._sink = None
