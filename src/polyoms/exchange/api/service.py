"""The venue's private operations on top of the matching core, free of HTTP.

Everything the REST handlers need that is more than rendering lives here: API keys, order
verification (signature, signer, owner, domain), submission, heartbeats, funding and the wallets
an EOA trades for. Handlers parse, call one method, render.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
from dataclasses import dataclass, field
from random import Random

from polyoms.core.clock import Clock
from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import (
    AuthError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidSignatureError,
    PolyomsError,
    PostOnlyModeError,
)
from polyoms.core.units import MICRO, Micro
from polyoms.exchange import messages as msg
from polyoms.exchange.api.faults import Faults
from polyoms.exchange.api.heartbeats import Heartbeats
from polyoms.exchange.api.keys import KeyRegistry, new_auth_secret
from polyoms.exchange.engine import Exchange, ExchangeCancelResult, SubmitResult
from polyoms.exchange.events import Event, Listener
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.orders import EngineOrder
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.auth import ApiCreds
from polyoms.polymarket.protocol.order import SignedOrder, recover_order_signer
from polyoms.polymarket.protocol.wire import MAX_BATCH, PmOrderEnvelope, signed_order_from_wire


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated L2 caller: the EOA that owns the API key, and the key."""

    address: str
    creds: ApiCreds

    @property
    def api_key(self) -> str:
        return self.creds.api_key


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
    # Orders answered `delayed`: (due ms, sequence, caller, order), matched when due.
    _delayed: list[tuple[int, int, Caller, SignedOrder]] = field(default_factory=list)
    _delayed_seq: int = 0
    listeners: list[Listener] = field(default_factory=list)
    # Background traders and the reference feed (`polyoms sim --scenario NAME`), if any.
    life: MarketLife | None = None

    def __post_init__(self) -> None:
        self.keys = KeyRegistry(self.auth_secret)
        self.heartbeats = Heartbeats(Random(self.seed ^ 0x5EED))
        if self.exchange.listener is not None:
            self.listeners.append(self.exchange.listener)
        self.exchange.listener = self._dispatch

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
        while self._delayed and self._delayed[0][0] <= now:
            _, _, caller, order = heapq.heappop(self._delayed)
            # A delayed order that no longer fits (FOK unfilled, funds gone) is simply not placed.
            with contextlib.suppress(PolyomsError):
                self._submit_now(caller, order)
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
        if self._marketable(order) and self.faults.delay_order():
            self._delayed_seq += 1
            due = now + self.faults.config.delayed_ms
            heapq.heappush(self._delayed, (due, self._delayed_seq, caller, order))
            return SubmitResult("delayed", order.order_id)
        return self._submit_now(caller, order)

    def _marketable(self, order: SignedOrder) -> bool:
        bid, ask = self.exchange.best_bid_ask(str(order.token_id))
        if order.side is Side.BUY:
            return ask is not None and ask * order.taker_amount <= order.maker_amount * MICRO
        return bid is not None and bid * order.maker_amount >= order.taker_amount * MICRO

    def _submit_now(self, caller: Caller, order: SignedOrder) -> SubmitResult:
        self._maybe_auto_fund(order.maker)
        result = self.exchange.submit(
            EngineOrder(
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
        )
        return result

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
        return self.exchange.cancel_many(order_ids, caller.api_key)

    # --- heartbeats ----------------------------------------------------------------------------

    def heartbeat(self, caller: Caller, heartbeat_id: str | None) -> tuple[bool, str]:
        return self.heartbeats.beat(caller.address.lower(), heartbeat_id, self.clock.now_ms())
