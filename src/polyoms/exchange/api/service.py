"""The venue's private operations on top of the matching core, free of HTTP.

Everything the REST handlers need that is more than rendering lives here: API keys, order
verification (signature, signer, owner, domain), submission, heartbeats, funding and the wallets
an EOA trades for. Handlers parse, call one method, render.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Final

from polyoms.core.clock import Clock
from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import (
    AuthError,
    DuplicateOrderError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidSignatureError,
    PolyomsError,
    PostOnlyModeError,
)
from polyoms.core.units import MICRO, Micro
from polyoms.exchange import messages as msg
from polyoms.exchange.accounts import Account
from polyoms.exchange.api.faults import Faults
from polyoms.exchange.api.heartbeats import Heartbeats
from polyoms.exchange.api.keys import KeyRegistry, new_auth_secret
from polyoms.exchange.engine import Exchange, ExchangeCancelResult, SubmitResult
from polyoms.exchange.events import CANCELLATION, PLACEMENT, Event, ExchangeOrderEvent, Listener
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.matching import new_order
from polyoms.exchange.orders import CANCELED, EngineOrder, Order
from polyoms.exchange.settlement import NEVER as NEVER_MS
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.auth import ApiCreds
from polyoms.polymarket.protocol.order import SignedOrder, recover_order_signer
from polyoms.polymarket.protocol.wire import MAX_BATCH, PmOrderEnvelope, signed_order_from_wire

TAKER_DELAY_MS: Final = 250
"""How long a marketable order waits on a market with the taker delay (`itode`, doc §4.4 and §7.6)."""
DELAYED: Final = "DELAYED"
"""The user channel's order status of an order held by a matching delay (doc §6.3)."""
# UNCONFIRMED: what the venue sends on the user channel while it holds an order is not documented;
# the order channel lists a DELAYED status, so a held order is announced as a PLACEMENT with it.
DELAYED_EVENT_KIND: Final = PLACEMENT
# UNCONFIRMED: whether a held order can be cancelled is not documented; here it can (its owner's
# cancel reaches it before it matches), and one that no longer fits when its time comes (FOK unfilled,
# funds gone) ends with a CANCELLATION carrying the refusal as its reason.
REASON_DELAY_FAILED: Final = "not placed after the matching delay: {error}"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated L2 caller: the EOA that owns the API key, and the key."""

    address: str
    creds: ApiCreds

    @property
    def api_key(self) -> str:
        return self.creds.api_key


@dataclass(slots=True)
class HeldOrder:
    """A marketable order answered `delayed`: matched at `due_ms` against whatever the book holds then."""

    due_ms: int
    caller: Caller
    order: SignedOrder
    record: Order
    """How the order reads while held (status DELAYED): rendered on the user channel and by GET /data/order."""


@dataclass(slots=True)
class DelayQueue:
    """Orders held by a matching delay (the market's taker delay or the `order_delayed_rate` fault).

    It is one of the exchange's timers: every operation of the exchange (a submit, a cancel) and its
    `advance` first release what has come due, so a maker's cancel that arrives before an order's
    time leaves it nothing to take, and one that arrives after comes too late.
    """

    release: Callable[[HeldOrder], None]
    _heap: list[tuple[int, int, str]] = field(default_factory=list)
    held: dict[str, HeldOrder] = field(default_factory=dict)
    _seq: int = 0

    @property
    def next_ms(self) -> int:
        while self._heap and self._heap[0][2] not in self.held:
            heapq.heappop(self._heap)  # cancelled while held
        return self._heap[0][0] if self._heap else NEVER_MS

    def hold(self, item: HeldOrder) -> None:
        self._seq += 1
        self.held[item.order.order_id] = item
        heapq.heappush(self._heap, (item.due_ms, self._seq, item.order.order_id))

    def take(self, order_id: str, owner: str) -> HeldOrder | None:
        item = self.held.get(order_id)
        if item is None or item.caller.api_key != owner:
            return None
        del self.held[order_id]
        return item

    def run(self, now_ms: int) -> None:
        while self.next_ms <= now_ms:
            _, _, order_id = heapq.heappop(self._heap)
            self.release(self.held.pop(order_id))

    def clear(self) -> None:
        self._heap.clear()
        self.held.clear()



@dataclass(slots=True)
class SimService:
    exchange: Exchange
    clock: Clock
    chain_id: int = constants.POLYGON
    seed: int = 0
    auto_fund: Micro = 0
    # What API credentials are derived from (keys.py): random per exchange unless restored from its
    # state, so that a restarted exchange hands out the same keys. Never derived from `seed`.
    auth_secret: bytes = field(default_factory=new_auth_secret, repr=False)
    keys: KeyRegistry = field(init=False)
    heartbeats: Heartbeats = field(init=False)
    # (EOA lower-case, signature type) -> the maker wallet it trades for.
    wallets: dict[tuple[str, int], str] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    _funded: set[str] = field(default_factory=set)
    # Orders answered `delayed`, matched when due (the exchange runs the queue as a timer).
    delayed: DelayQueue = field(init=False)
    listeners: list[Listener] = field(default_factory=list)
    # Background traders and the reference feed (`polyoms sim --scenario NAME`), if any.
    life: MarketLife | None = None

    def __post_init__(self) -> None:
        self.keys = KeyRegistry(self.auth_secret)
        self.heartbeats = Heartbeats(Random(self.seed ^ 0x5EED))
        if self.exchange.listener is not None:
            self.listeners.append(self.exchange.listener)
        self.exchange.listener = self._dispatch
        self.delayed = DelayQueue(self._release)
        self.exchange.add_timer(self.delayed)

    # --- what happened, for the WebSocket channels and anyone else listening -------------------

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def _dispatch(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)

    # --- time ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Timers: GTD expiry and the heartbeat dead-man switch. Called periodically."""
        now = self.clock.now_ms()
        self.faults.tick(now)
        if self.life is not None:
            self.life.run_until(now)
        self.exchange.expire(now)
        self.delayed.run(now)
        for address in self.heartbeats.expired(now):
            for api_key in self.keys.keys_of(address):
                self.exchange.cancel_all(api_key, reason=msg.REASON_HEARTBEAT)

    def apply_fault_config(self) -> None:
        """Push the fault switches that live in the exchange core (settlement failures) down to it."""
        pipeline = self.exchange.settlement
        rate = self.faults.config.settlement_failure_rate
        retry = min(pipeline.config.retry_probability, 1 - rate)
        pipeline.config = dataclasses.replace(pipeline.config, failure_probability=rate, retry_probability=retry)

    # --- accounts ------------------------------------------------------------------------------

    def _maybe_auto_fund(self, address: str) -> None:
        key = address.lower()
        if self.auto_fund and key not in self._funded:
            self._funded.add(key)
            self.exchange.fund(address, self.auto_fund)

    def fund(self, address: str, pusd: Micro, tokens: dict[str, Micro]) -> None:
        self._funded.add(address.lower())
        self.exchange.fund(address, pusd, tokens)

    def link_wallet(self, owner: str, signature_type: int, wallet: str) -> None:
        self.wallets[(owner.lower(), signature_type)] = wallet

    def funder_of(self, address: str, signature_type: int) -> str:
        if signature_type == SignatureType.EOA:
            return address
        return self.wallets.get((address.lower(), signature_type), address)

    # --- API keys ------------------------------------------------------------------------------

    def create_key(self, address: str, nonce: int) -> ApiCreds:
        self._maybe_auto_fund(address)
        return self.keys.create(address, nonce)

    def derive_key(self, address: str, nonce: int) -> ApiCreds:
        creds = self.keys.derive(address, nonce)
        if creds is None:
            raise AuthError(venue_errors.DERIVE_KEY_FAILED, status=400)
        return creds

    # --- orders --------------------------------------------------------------------------------

    def verify(self, caller: Caller, env: PmOrderEnvelope) -> SignedOrder:
        """The typed, signature-checked order of an envelope, or the venue's error."""
        token_id = str(env.order.tokenId)
        market = self.exchange.market_of_token(token_id) if self._known_token(token_id) else None
        if market is None:
            raise InvalidOrderError(msg.unknown_token(token_id), status=400, token_id=token_id)
        order = signed_order_from_wire(env, chain_id=self.chain_id, neg_risk=market.neg_risk)
        if env.owner != caller.api_key:
            raise AuthError(venue_errors.OWNER_MISMATCH, status=400)
        if order.signature_type is SignatureType.POLY_1271:
            eoa = recover_order_signer(order)
        else:
            if order.signer.lower() != caller.address.lower():
                raise AuthError(venue_errors.SIGNER_MISMATCH, status=400)
            eoa = recover_order_signer(order)
            if order.signature_type is SignatureType.EOA and order.maker != order.signer:
                raise InvalidSignatureError(venue_errors.INVALID_SIGNATURE, status=400, order_id=order.order_id)
        if eoa.lower() != caller.address.lower():
            raise InvalidSignatureError(venue_errors.INVALID_SIGNATURE, status=400, order_id=order.order_id)
        if order.signature_type is not SignatureType.EOA:
            # Proxy/Safe makers are not checked against the factories' CREATE2 addresses here.
            self.link_wallet(caller.address, int(order.signature_type), order.maker)
        if order.order_type is OrderType.GTD:
            if order.expiration <= self.clock.now_ms() // 1000 + constants.GTD_SECURITY_THRESHOLD_S:
                raise InvalidExpirationError(venue_errors.INVALID_EXPIRATION, status=400, order_id=order.order_id)
        elif order.order_type.is_marketable_only and order.post_only:
            raise InvalidOrderError(venue_errors.INVALID_ORDER_PAYLOAD, status=400)
        return order

    def _known_token(self, token_id: str) -> bool:
        try:
            self.exchange.market_of_token(token_id)
        except PolyomsError:
            return False
        return True

    def submit(self, caller: Caller, env: PmOrderEnvelope) -> SubmitResult:
        return self.submit_verified(caller, self.verify(caller, env))

    def submit_verified(self, caller: Caller, order: SignedOrder) -> SubmitResult:
        now = self.clock.now_ms()
        post_only_left = self.faults.post_only(now)
        if post_only_left is not None and not order.post_only:
            raise PostOnlyModeError(
                venue_errors.POST_ONLY_MODE, status=503, retry_after=max(1, int(post_only_left + 0.999))
            )
        delay = self._delay_ms(order)
        if delay is None:
            return self._submit_now(caller, order)
        return self._hold(caller, order, now, delay)

    def _delay_ms(self, order: SignedOrder) -> int | None:
        """How long the order waits before matching, None to match at once.

        Only an order that would take is held; a post-only one is refused at once by the engine.
        The market's taker delay and the fault take the same path; the fault is drawn only for
        orders the market does not already delay, so its generator sees the same draws either way.
        """
        if order.post_only or not self._marketable(order):
            return None
        if self.exchange.market_of_token(str(order.token_id)).taker_delay:
            return TAKER_DELAY_MS
        if self.faults.delay_order():
            return self.faults.config.delayed_ms
        return None

    def _hold(self, caller: Caller, order: SignedOrder, now: int, delay_ms: int) -> SubmitResult:
        if order.order_id in self.delayed.held or self.exchange.get_order(order.order_id) is not None:
            raise DuplicateOrderError(venue_errors.duplicated(order.order_id))
        spec = self.exchange.market_of_token(str(order.token_id))
        # The order's record as the engine would build it: this also refuses, now rather than after
        # the delay, an order that breaks the market's rules (tick, minimum size, expiration).
        record = new_order(
            self._engine_order(caller, order),
            spec,
            str(order.token_id) == spec.yes_token_id,
            now,
            0,
            Account(order.maker),
        )
        record.status = DELAYED
        self.delayed.hold(HeldOrder(now + delay_ms, caller, order, record))
        self._dispatch(ExchangeOrderEvent(DELAYED_EVENT_KIND, record, now))
        return SubmitResult("delayed", order.order_id)

    def _release(self, item: HeldOrder) -> None:
        """A held order's time has come: match it now, or end it if it no longer fits."""
        try:
            self._submit_now(item.caller, item.order)
        except PolyomsError as exc:
            self._end_held(item, REASON_DELAY_FAILED.format(error=exc.message))

    def _end_held(self, item: HeldOrder, reason: str) -> None:
        record = item.record
        record.status = CANCELED
        record.cancel_reason = reason
        self._dispatch(ExchangeOrderEvent(CANCELLATION, record, self.clock.now_ms(), reason=reason))

    def release_due(self) -> None:
        """Match the held orders whose time has come (the server calls this when the first is due)."""
        self.delayed.run(self.clock.now_ms())

    def held_order(self, order_id: str) -> Order | None:
        """A held order's record (status DELAYED), for GET /data/order."""
        item = self.delayed.held.get(order_id)
        return None if item is None else item.record

    def _marketable(self, order: SignedOrder) -> bool:
        bid, ask = self.exchange.best_bid_ask(str(order.token_id))
        if order.side is Side.BUY:
            return ask is not None and ask * order.taker_amount <= order.maker_amount * MICRO
        return bid is not None and bid * order.maker_amount >= order.taker_amount * MICRO

    @staticmethod
    def _engine_order(caller: Caller, order: SignedOrder) -> EngineOrder:
        return EngineOrder(
            order_id=order.order_id,
            maker=order.maker,
            owner=caller.api_key,
            token_id=str(order.token_id),
            side=order.side,
            maker_amount=order.maker_amount,
            taker_amount=order.taker_amount,
            order_type=order.order_type,
            expiration=order.expiration if order.order_type is OrderType.GTD else 0,
            post_only=order.post_only,
            timestamp_ms=order.timestamp_ms,
        )

    def _submit_now(self, caller: Caller, order: SignedOrder) -> SubmitResult:
        self._maybe_auto_fund(order.maker)
        return self.exchange.submit(self._engine_order(caller, order))

    def submit_batch(
        self, caller: Caller, envelopes: list[PmOrderEnvelope]
    ) -> list[tuple[str, SubmitResult | PolyomsError]]:
        if len(envelopes) > MAX_BATCH:
            raise InvalidOrderError(venue_errors.too_many_orders(len(envelopes), MAX_BATCH), status=400)
        out: list[tuple[str, SubmitResult | PolyomsError]] = []
        for env in envelopes:
            order_id = ""
            try:
                order = self.verify(caller, env)
                order_id = order.order_id
                out.append((order_id, self.submit_verified(caller, order)))
            except PolyomsError as exc:
                out.append((order_id, exc))
        return out

    def cancel(self, caller: Caller, order_ids: list[str]) -> ExchangeCancelResult:
        # The exchange first releases what has come due (its timers), then cancels what rests.
        result = self.exchange.cancel_many(order_ids, caller.api_key)
        for order_id in list(result.not_canceled):
            item = self.delayed.take(order_id, caller.api_key)
            if item is not None:
                del result.not_canceled[order_id]
                result.canceled.append(order_id)
                self._end_held(item, msg.REASON_USER)
        return result

    # --- heartbeats ----------------------------------------------------------------------------

    def heartbeat(self, caller: Caller, heartbeat_id: str | None) -> tuple[bool, str]:
        return self.heartbeats.beat(caller.address.lower(), heartbeat_id, self.clock.now_ms())
