"""Async client for the CLOB V2 REST API (protocol doc §2-§4), public data and one wallet's account.

Every method returns typed, exact results (`models.py`) or raises the venue's typed errors
(`polyoms.core.errors`). Which requests are retried, limited and circuit-broken is decided in
`rest.py`; here is what each endpoint means:

* orders are posted exactly once: a placement without a usable answer raises OrderOutcomeUnknownError
  with the order ids (the hashes computed before sending) and is never re-posted;
* `order_version_mismatch` refreshes GET /version and raises OrderVersionMismatchError telling the
  caller to sign again for `server_version` (nothing is re-signed silently);
* cursor pagination is followed from `MA==` to `LTE=`, refusing a cursor that repeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

import msgspec

from polyoms.core.clock import Clock
from polyoms.core.enums import Side, SignatureType
from polyoms.core.errors import (
    AuthError,
    InvalidOrderError,
    MalformedMessageError,
    NotFoundError,
    OrderVersionMismatchError,
    PolyomsError,
    VenueError,
)
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import Micro, TickSize
from polyoms.core.user_events import TradeEvent
from polyoms.polymarket.client import models
from polyoms.polymarket.client.errors import OrderOutcomeUnknownError
from polyoms.polymarket.client.ratelimit import CANCELS, ORDERS
from polyoms.polymarket.client.redact import get_logger, redact, register_secret
from polyoms.polymarket.client.rest import AuthFn, HttpResponse, Params, RestCore
from polyoms.polymarket.client.wallet import Wallet, register_creds
from polyoms.polymarket.protocol import codec, rest
from polyoms.polymarket.protocol.auth import ApiCreds, l1_headers, l2_headers
from polyoms.polymarket.protocol.errors import (
    INVALID_HEARTBEAT,
    ORDER_VERSION_MISMATCH,
    error_from_response,
    too_many_orders,
)
from polyoms.polymarket.protocol.messages import decode_book, decode_books
from polyoms.polymarket.protocol.order import SignedOrder
from polyoms.polymarket.protocol.rest import LastTradeInfo, PricePoint
from polyoms.polymarket.protocol.wire import (
    MAX_BATCH,
    PmCancelAnswer,
    PmCancelMarketOrders,
    PmCancelOrder,
    PmOrderAnswer,
    decode_order_response,
    decode_order_responses,
    encode_json,
    post_order_body,
    post_orders_body,
)

log = get_logger()
T = TypeVar("T")

MAX_CANCEL_IDS: Final = 1000
MAX_LAST_TRADES: Final = 500
_cancel_answer: Final = msgspec.json.Decoder(PmCancelAnswer)


class ClobClient:
    """CLOB REST for one failure domain: public data (wallet=None) or one wallet's account too."""

    def __init__(
        self,
        core: RestCore,
        *,
        chain_id: int,
        wall_clock: Clock,
        wallet: Wallet | None = None,
        books_chunk: int = 100,
        concurrency: int = 4,
    ) -> None:
        self.core = core
        self.chain_id = chain_id
        self.wall_clock = wall_clock
        self.wallet = wallet
        self.creds: ApiCreds | None = wallet.creds if wallet else None
        self.books_chunk = max(1, books_chunk)
        self.concurrency = max(1, concurrency)
        self.server_version: int | None = None
        self.time_offset_s = 0
        """Added to the local clock for L1/L2 timestamps (see `sync_time`)."""
        self.heartbeat_id = ""
        self.heartbeat_resyncs = 0

    def __repr__(self) -> str:
        return f"ClobClient({self.core.name}, {self.core.base_url})"

    # --- plumbing ----------------------------------------------------------------------------------

    def _now_s(self) -> int:
        return self.wall_clock.now_ms() // 1000 + self.time_offset_s

    def _need_wallet(self) -> Wallet:
        if self.wallet is None:
            raise AuthError("this client has no wallet; use ClientHub.clob(wallet)", source="local")
        return self.wallet

    def _l1(self, nonce: int | None) -> AuthFn:
        wallet = self._need_wallet()
        n = wallet.nonce if nonce is None else nonce

        def sign(method: str, path: str, body: bytes | None) -> dict[str, str]:
            return l1_headers(wallet.signer, self.chain_id, self._now_s(), n)

        return sign

    def _l2(self) -> AuthFn:
        wallet = self._need_wallet()
        creds = self.creds
        if creds is None:
            raise AuthError("no API credentials for this wallet; call create_or_derive_api_key() first", source="local")

        def sign(method: str, path: str, body: bytes | None) -> dict[str, str]:
            return l2_headers(wallet.address, creds, self._now_s(), method, path, body)

        return sign

    async def _get(self, path: str, what: str, params: Params | None = None, *, auth: AuthFn | None = None) -> Any:
        return (await self._get_raw(path, params, auth=auth)).json(what)

    async def _get_raw(self, path: str, params: Params | None = None, *, auth: AuthFn | None = None) -> HttpResponse:
        return await self.core.request("GET", path, params=params, auth=auth, idempotent=True)

    async def _post_read(self, path: str, payload: Any, what: str) -> Any:
        """A read-only POST (/books, /prices...): idempotent, so retried like a GET."""
        resp = await self.core.request("POST", path, body=encode_json(payload), idempotent=True)
        return resp.json(what)

    async def _gather_chunks(self, chunks: Sequence[T], fetch: Callable[[T], Awaitable[Any]]) -> list[Any]:
        """Fetch chunks concurrently (bounded); the limiter keeps the burst within the venue's quotas."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(chunk: T) -> Any:
            async with gate:
                return await fetch(chunk)

        return list(await asyncio.gather(*(one(c) for c in chunks)))

    @staticmethod
    def _tokens(token_ids: Iterable[str | int]) -> list[str]:
        return list(dict.fromkeys(str(t) for t in token_ids))

    # --- meta ----------------------------------------------------------------------------------------

    async def ok(self) -> bool:
        await self.core.request("GET", "/ok", idempotent=True)
        return True

    async def server_time(self) -> int:
        """Unix seconds on the venue's clock."""
        value = await self._get("/time", "time")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise models.malformed(f"time: expected an integer, got {value!r}"[:100])
        return int(value)

    async def sync_time(self) -> int:
        """Sign with the venue's clock from now on (like the SDKs' use_server_time); returns the offset."""
        self.time_offset_s = await self.server_time() - self.wall_clock.now_ms() // 1000
        return self.time_offset_s

    async def get_version(self) -> int:
        d = models.obj(await self._get("/version", "version"), "version")
        version = models.integer(d, "version")
        if version is None:
            raise models.malformed("version: missing `version`")
        self.server_version = version
        return version

    # --- markets -------------------------------------------------------------------------------------

    async def markets_page(self, cursor: str = models.FIRST_CURSOR) -> models.Page[models.Market]:
        return models.decode_markets_page((await self._get_raw("/markets", {"next_cursor": cursor})).body)

    async def iter_markets(self) -> AsyncIterator[models.Market]:
        async for market in _paginate(self.markets_page):
            yield market

    async def all_markets(self) -> list[models.Market]:
        return [m async for m in self.iter_markets()]

    async def market(self, condition_id: str) -> models.Market:
        return models.decode_market((await self._get_raw(f"/markets/{condition_id}")).body)

    async def clob_market(self, condition_id: str) -> models.ClobMarketInfo:
        return models.decode_clob_market_info((await self._get_raw(f"/clob-markets/{condition_id}")).body)

    async def market_by_token(self, token_id: str | int) -> models.TokenPair:
        return models.parse_token_pair(await self._get(f"/markets-by-token/{token_id}", "markets-by-token"))

    async def tick_size(self, token_id: str | int) -> TickSize:
        return rest.decode_tick_size((await self._get_raw("/tick-size", {"token_id": str(token_id)})).body)

    async def neg_risk(self, token_id: str | int) -> bool:
        return rest.decode_neg_risk((await self._get_raw("/neg-risk", {"token_id": str(token_id)})).body)

    async def fee_rate_bps(self, token_id: str | int) -> int:
        """V1 legacy base fee (bps); V2 fees are the market's curve (`clob_market(...).fee`)."""
        d = models.obj(await self._get("/fee-rate", "fee-rate", {"token_id": str(token_id)}), "fee-rate")
        return models.integer(d, "base_fee", 0) or 0

    # --- books and prices ------------------------------------------------------------------------------

    async def book(self, token_id: str | int) -> BookSnapshot:
        resp = await self.core.request("GET", "/book", params={"token_id": str(token_id)}, idempotent=True)
        return decode_book(resp.body)

    async def books(self, token_ids: Iterable[str | int]) -> list[BookSnapshot]:
        """Books of many tokens via POST /books, `books_chunk` tokens per request, in request order."""
        tokens = self._tokens(token_ids)
        chunks = [tokens[i : i + self.books_chunk] for i in range(0, len(tokens), self.books_chunk)]

        async def fetch(chunk: list[str]) -> list[BookSnapshot]:
            payload = encode_json([{"token_id": t} for t in chunk])
            resp = await self.core.request("POST", "/books", body=payload, idempotent=True)
            return decode_books(resp.body)

        return [book for part in await self._gather_chunks(chunks, fetch) for book in part]

    async def price(self, token_id: str | int, side: Side | str) -> Micro:
        """Best price of the RESTING side named: BUY -> best bid, SELL -> best ask (doc §4.3)."""
        params = {"token_id": str(token_id), "side": Side.parse(side).name}
        return rest.decode_price((await self._get_raw("/price", params)).body)

    async def prices(self, requests: Iterable[tuple[str | int, Side | str]]) -> dict[str, dict[Side, Micro]]:
        payload = [{"token_id": str(t), "side": Side.parse(s).name} for t, s in requests]
        d = models.obj(await self._post_read("/prices", payload, "prices"), "prices")
        out: dict[str, dict[Side, Micro]] = {}
        for token, by_side in d.items():
            sides = models.obj(by_side, "prices[token]")
            out[str(token)] = {codec.side(k): models.price_value(sides, k) for k in sides}
        return out

    async def midpoint(self, token_id: str | int) -> Micro:
        return rest.decode_midpoint((await self._get_raw("/midpoint", {"token_id": str(token_id)})).body)

    async def midpoints(self, token_ids: Iterable[str | int]) -> dict[str, Micro]:
        payload = [{"token_id": t} for t in self._tokens(token_ids)]
        d = models.obj(await self._post_read("/midpoints", payload, "midpoints"), "midpoints")
        return {str(k): models.price_value(d, k) for k in d}

    async def spread(self, token_id: str | int) -> Micro:
        return rest.decode_spread((await self._get_raw("/spread", {"token_id": str(token_id)})).body)

    async def spreads(self, token_ids: Iterable[str | int]) -> dict[str, Micro]:
        payload = [{"token_id": t} for t in self._tokens(token_ids)]
        d = models.obj(await self._post_read("/spreads", payload, "spreads"), "spreads")
        return {str(k): models.price_value(d, k) for k in d}

    async def last_trade_price(self, token_id: str | int) -> LastTradeInfo:
        """Last trade of a token; `side` (the taker's) is None when there was none."""
        resp = await self._get_raw("/last-trade-price", {"token_id": str(token_id)})
        return rest.decode_last_trade_price(resp.body)

    async def last_trades_prices(self, token_ids: Iterable[str | int]) -> dict[str, LastTradeInfo]:
        tokens = self._tokens(token_ids)
        chunks = [tokens[i : i + MAX_LAST_TRADES] for i in range(0, len(tokens), MAX_LAST_TRADES)]

        async def fetch(chunk: list[str]) -> list[Any]:
            return models.arr(
                await self._post_read("/last-trades-prices", [{"token_id": t} for t in chunk], "last-trades-prices"),
                "last-trades-prices",
            )

        out: dict[str, LastTradeInfo] = {}
        for part in await self._gather_chunks(chunks, fetch):
            for item in part:
                d = models.obj(item, "last-trades-prices[]")
                out[models.text(d, "token_id")] = LastTradeInfo(
                    models.price_value(d, "price"), models.side_or_none(d.get("side"))
                )
        return out

    async def prices_history(
        self,
        token_id: str | int,
        *,
        start_ts: int | None = None,
        end_ts: int | None = None,
        interval: str | None = None,
        fidelity: int | None = None,
    ) -> tuple[PricePoint, ...]:
        params = {"market": str(token_id)}
        for key, value in (("startTs", start_ts), ("endTs", end_ts), ("interval", interval), ("fidelity", fidelity)):
            if value is not None:
                params[key] = str(value)
        return rest.decode_prices_history((await self._get_raw("/prices-history", params)).body)

    # --- API keys (L1) ----------------------------------------------------------------------------------

    def _adopt_creds(self, data: Any, what: str) -> ApiCreds:
        d = models.obj(data, what)
        # Register before anything else can print them (even a failed parse below).
        register_creds_texts(d.get("secret"), d.get("passphrase"))
        try:
            creds = ApiCreds(models.text(d, "apiKey"), models.text(d, "secret"), models.text(d, "passphrase"))
        except PolyomsError:
            raise models.malformed(f"{what}: the answer does not hold usable credentials") from None
        register_creds(creds)
        self.creds = creds
        if self.wallet is not None:
            self.wallet = self.wallet.with_creds(creds)
        return creds

    async def create_api_key(self, nonce: int | None = None) -> ApiCreds:
        """POST /auth/api-key: a new key for (signer, nonce). Not retried (it is not idempotent)."""
        resp = await self.core.request("POST", "/auth/api-key", auth=self._l1(nonce), idempotent=False)
        return self._adopt_creds(resp.json("api-key"), "api-key")

    async def derive_api_key(self, nonce: int | None = None) -> ApiCreds:
        """GET /auth/derive-api-key: the existing key for (signer, nonce)."""
        resp = await self.core.request("GET", "/auth/derive-api-key", auth=self._l1(nonce), idempotent=True)
        return self._adopt_creds(resp.json("derive-api-key"), "derive-api-key")

    async def create_or_derive_api_key(self, nonce: int | None = None) -> ApiCreds:
        """The SDKs' convenience: create, and if the venue refuses (key exists...), derive."""
        try:
            return await self.create_api_key(nonce)
        except PolyomsError as exc:
            log.info("%s: create api key failed (%s); deriving", self.core.name, exc.message)
            return await self.derive_api_key(nonce)

    async def api_keys(self) -> list[str]:
        d = await self._get("/auth/api-keys", "api-keys", auth=self._l2())
        keys = d.get("apiKeys", []) if isinstance(d, dict) else d
        out = []
        for k in models.arr(keys, "api-keys"):
            # The OpenAPI spec says key ids; the TS SDK's type says creds objects: accept both.
            out.append(models.text(k, "apiKey") if isinstance(k, dict) else str(k))
        return out

    async def delete_api_key(self) -> None:
        await self.core.request("DELETE", "/auth/api-key", auth=self._l2(), idempotent=True)
        self.creds = None

    async def closed_only(self) -> bool:
        return models.flag(
            models.obj(await self._get("/auth/ban-status/closed-only", "closed-only", auth=self._l2()), ""),
            "closed_only",
        )

    # --- orders (L2) -------------------------------------------------------------------------------------

    async def _version_mismatch(self, exc: PolyomsError, order_ids: Sequence[str]) -> OrderVersionMismatchError:
        try:
            version = await self.get_version()
        except PolyomsError as refresh_error:
            log.warning("%s: /version refresh failed: %s", self.core.name, refresh_error.message)
            version = None
        log.warning("%s: order_version_mismatch; venue version now %s: re-sign", self.core.name, version)
        return OrderVersionMismatchError(
            f"{ORDER_VERSION_MISMATCH}: sign again for exchange version {version}",
            source="venue",
            status=exc.status,
            venue_message=exc.venue_message,
            server_version=version,
            order_ids=list(order_ids),
        )

    def _check_orders(self, orders: Sequence[SignedOrder]) -> None:
        """Refuse, before sending, orders this wallet cannot place (the venue would only say 'invalid')."""
        wallet = self._need_wallet()
        signer = wallet.maker if wallet.signature_type is SignatureType.POLY_1271 else wallet.address
        for o in orders:
            if o.maker.lower() != wallet.maker.lower() or o.signer.lower() != signer.lower():
                raise InvalidOrderError(
                    "order was signed for another wallet", order_id=o.order_id, maker=o.maker, wallet=wallet.label
                )
            if o.chain_id != self.chain_id:
                raise InvalidOrderError(
                    f"order was signed for chain {o.chain_id}, this client trades on {self.chain_id}",
                    order_id=o.order_id,
                )

    async def post_order(self, order: SignedOrder, *, defer_exec: bool = False) -> models.OrderPlacement:
        """POST /order, exactly once. Raises the venue's typed rejection, or OrderOutcomeUnknownError.

        If the calling task is cancelled while the request is in flight, CancelledError propagates and
        the outcome is just as unknown: resolve it by `order.order_id` like any other.
        """
        auth = self._l2()
        assert self.creds is not None
        self._check_orders((order,))
        body = post_order_body(order, self.creds.api_key, defer_exec=defer_exec)
        ids = (order.order_id,)
        try:
            resp = await self.core.request(
                "POST", "/order", body=body, auth=auth, idempotent=False, signer=(ORDERS, 1), order_ids=ids
            )
        except OrderVersionMismatchError as exc:
            raise await self._version_mismatch(exc, ids) from None
        except PolyomsError as exc:
            exc.context.setdefault("order_id", order.order_id)
            raise
        try:
            answer = decode_order_response(resp.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _unreadable(ids) from None
        try:
            outcome = answer_outcome(answer, order.order_id)
        except MalformedMessageError:
            raise _unreadable(ids) from None
        if outcome.error is not None:
            if isinstance(outcome.error, OrderVersionMismatchError):
                raise await self._version_mismatch(outcome.error, ids)
            raise outcome.error
        _check_id(answer.orderID, order.order_id, self.core.name)
        assert outcome.placement is not None
        return outcome.placement

    async def post_orders(
        self, orders: Sequence[SignedOrder], *, defer_exec: bool = False
    ) -> list[models.BatchOutcome]:
        """POST /orders (at most 15), exactly once; one typed outcome per order, in request order."""
        if not orders:
            return []
        if len(orders) > MAX_BATCH:
            raise InvalidOrderError(too_many_orders(len(orders), MAX_BATCH))
        auth = self._l2()
        assert self.creds is not None
        self._check_orders(orders)
        body = post_orders_body(list(orders), self.creds.api_key, defer_exec=defer_exec)
        ids = tuple(o.order_id for o in orders)
        try:
            resp = await self.core.request(
                "POST", "/orders", body=body, auth=auth, idempotent=False, signer=(ORDERS, len(ids)), order_ids=ids
            )
        except OrderVersionMismatchError as exc:
            raise await self._version_mismatch(exc, ids) from None
        try:
            answers = decode_order_responses(resp.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _unreadable(ids) from None
        if len(answers) != len(ids):
            raise _unreadable(ids, f"{len(answers)} answers for {len(ids)} orders")
        out: list[models.BatchOutcome] = []
        mismatch = False
        for order_id, answer in zip(ids, answers, strict=True):
            try:
                outcome = answer_outcome(answer, order_id)
            except MalformedMessageError:
                raise _unreadable(ids) from None
            if outcome.error is None:
                _check_id(answer.orderID, order_id, self.core.name)
            mismatch = mismatch or isinstance(outcome.error, OrderVersionMismatchError)
            out.append(outcome)
        if mismatch:
            await self._version_mismatch(VenueError(ORDER_VERSION_MISMATCH), ids)
        return out

    async def cancel_order(self, order_id: str) -> PmCancelAnswer:
        body = encode_json(PmCancelOrder(order_id))
        resp = await self.core.request(
            "DELETE", "/order", body=body, auth=self._l2(), idempotent=True, signer=(CANCELS, 1)
        )
        return models.decode(resp.body, _cancel_answer, "cancel")

    async def cancel_orders(self, order_ids: Iterable[str]) -> PmCancelAnswer:
        """DELETE /orders in chunks no bigger than the venue's 1000 nor this signer's cancel burst."""
        ids = list(dict.fromkeys(order_ids))
        result = PmCancelAnswer()
        if not ids:
            return result
        bucket = self.core.signer_buckets.get(CANCELS)
        chunk = min(MAX_CANCEL_IDS, bucket.capacity if bucket is not None else MAX_CANCEL_IDS)
        auth = self._l2()
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            resp = await self.core.request(
                "DELETE", "/orders", body=encode_json(part), auth=auth, idempotent=True, signer=(CANCELS, len(part))
            )
            result = result.merge(models.decode(resp.body, _cancel_answer, "cancel"))
        return result

    async def _cancel_counted(self, path: str, body: bytes | None) -> PmCancelAnswer:
        resp = await self.core.request("DELETE", path, body=body, auth=self._l2(), idempotent=True, signer=(CANCELS, 1))
        result = models.decode(resp.body, _cancel_answer, "cancel")
        bucket = self.core.signer_buckets.get(CANCELS)
        if bucket is not None and self.core.ip_limiter.config.enabled and result.canceled:
            # The venue charges 1 + the number cancelled; the count is known only now.
            bucket.charge(self.core.clock.now_ms(), len(result.canceled))
        return result

    async def cancel_all(self) -> PmCancelAnswer:
        return await self._cancel_counted("/cancel-all", None)

    async def cancel_market_orders(
        self, *, market: str | None = None, asset_id: str | int | None = None
    ) -> PmCancelAnswer:
        body = encode_json(PmCancelMarketOrders(market or "", str(asset_id) if asset_id is not None else ""))
        return await self._cancel_counted("/cancel-market-orders", body)

    async def get_order(self, order_id: str) -> models.OpenOrder | None:
        """GET /data/order/{id}; None when the venue does not know the order (404 or an empty answer)."""
        try:
            resp = await self.core.request("GET", f"/data/order/{order_id}", auth=self._l2(), idempotent=True)
        except NotFoundError:
            return None
        if not resp.body.strip() or resp.body.strip() in (b"null", b"{}", b'""'):
            return None
        return models.decode_open_order(resp.body)

    async def orders_page(
        self,
        cursor: str = models.FIRST_CURSOR,
        *,
        order_id: str | None = None,
        market: str | None = None,
        asset_id: str | int | None = None,
    ) -> models.Page[models.OpenOrder]:
        params = _params(next_cursor=cursor, id=order_id, market=market, asset_id=asset_id)
        return models.decode_orders_page((await self._get_raw("/data/orders", params, auth=self._l2())).body)

    async def open_orders(
        self, *, order_id: str | None = None, market: str | None = None, asset_id: str | int | None = None
    ) -> list[models.OpenOrder]:
        """Every open order (all pages)."""

        async def page(cursor: str) -> models.Page[models.OpenOrder]:
            return await self.orders_page(cursor, order_id=order_id, market=market, asset_id=asset_id)

        return [o async for o in _paginate(page)]

    async def trades_page(
        self,
        cursor: str = models.FIRST_CURSOR,
        *,
        trade_id: str | None = None,
        maker_address: str | None = None,
        market: str | None = None,
        asset_id: str | int | None = None,
        before: int | None = None,
        after: int | None = None,
    ) -> models.Page[TradeEvent]:
        params = _params(
            next_cursor=cursor,
            id=trade_id,
            maker_address=maker_address,
            market=market,
            asset_id=asset_id,
            before=before,
            after=after,
        )
        return models.decode_trades_page((await self._get_raw("/data/trades", params, auth=self._l2())).body)

    async def trades(
        self,
        *,
        trade_id: str | None = None,
        maker_address: str | None = None,
        market: str | None = None,
        asset_id: str | int | None = None,
        before: int | None = None,
        after: int | None = None,
    ) -> list[TradeEvent]:
        """Every trade this key took part in, as taker or maker (all pages)."""

        async def page(cursor: str) -> models.Page[TradeEvent]:
            return await self.trades_page(
                cursor,
                trade_id=trade_id,
                maker_address=maker_address,
                market=market,
                asset_id=asset_id,
                before=before,
                after=after,
            )

        return [t async for t in _paginate(page)]

    # --- account (L2) --------------------------------------------------------------------------------------

    def _balance_params(self, asset_type: str, token_id: str | int | None, signature_type: int | None) -> Params:
        wallet = self._need_wallet()
        sig = int(wallet.signature_type) if signature_type is None else signature_type
        return _params(asset_type=asset_type.upper(), token_id=token_id, signature_type=sig)

    async def balance_allowance(
        self, asset_type: str = "COLLATERAL", *, token_id: str | int | None = None, signature_type: int | None = None
    ) -> models.BalanceAllowance:
        """pUSD (COLLATERAL) or one outcome token (CONDITIONAL + token_id), in micro-units."""
        params = self._balance_params(asset_type, token_id, signature_type)
        return models.decode_balance((await self._get_raw("/balance-allowance", params, auth=self._l2())).body)

    async def update_balance_allowance(
        self, asset_type: str = "COLLATERAL", *, token_id: str | int | None = None, signature_type: int | None = None
    ) -> None:
        """Ask the venue to re-read chain state (after deposits or approvals); the answer is not relied on."""
        params = self._balance_params(asset_type, token_id, signature_type)
        await self.core.request("GET", "/balance-allowance/update", params=params, auth=self._l2(), idempotent=True)

    async def heartbeat(self) -> str:
        """POST /v1/heartbeats with the chained id; returns the id for the next beat.

        A venue answering "Invalid Heartbeat ID" names the id it expects (after a lost answer, or a
        restart of this process): the chain is resumed with it once. Once heartbeats have started the
        venue cancels every open order after ~10 s without one (doc §4.8).
        """
        auth = self._l2()
        for _ in range(2):
            body = encode_json({"heartbeat_id": self.heartbeat_id})
            resp = await self.core.request(
                "POST", "/v1/heartbeats", body=body, auth=auth, idempotent=True, accept=(400,)
            )
            data = resp.json("heartbeat")
            d = data if isinstance(data, dict) else {}
            if resp.status < 300:
                new_id = models.text(d, "heartbeat_id")
                if not new_id:
                    raise models.malformed("heartbeat: the answer has no heartbeat_id")
                self.heartbeat_id = new_id
                return new_id
            expected = models.text(d, "heartbeat_id")
            message = models.text(d, "error") or models.text(d, "error_msg")
            if expected and INVALID_HEARTBEAT.lower() in message.lower() and expected != self.heartbeat_id:
                log.warning("%s: heartbeat chain resumed with the venue's expected id", self.core.name)
                self.heartbeat_id = expected
                self.heartbeat_resyncs += 1
                continue
            raise error_from_response(resp.status, redact(resp.body.decode("utf-8", "replace")), path="/v1/heartbeats")
        raise VenueError("heartbeat chain could not be resumed", source="venue", path="/v1/heartbeats")


# --- helpers ------------------------------------------------------------------------------------------


def register_creds_texts(*values: Any) -> None:
    register_secret(*(v for v in values if isinstance(v, str)))


def _params(**values: str | int | None) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None and v != ""}


def answer_outcome(answer: PmOrderAnswer, order_id: str) -> models.BatchOutcome:
    """One order's answer to POST /order(s), read: its placement, or for success=false the typed refusal
    (an unrecognised message is an OrderRejectedError, 400, not a 5xx). MalformedMessageError when the
    placement cannot be read. The in-process venue reads the exchange's answers with it too."""
    if not answer.success:
        refusal = error_from_response(400, {"error": redact(answer.errorMsg)}, order_id=order_id)
        return models.BatchOutcome(order_id, None, refusal)
    return models.BatchOutcome(order_id, models.placement_from_response(answer, order_id), None)


def _unreadable(ids: Sequence[str], detail: str = "the answer cannot be read") -> OrderOutcomeUnknownError:
    return OrderOutcomeUnknownError(
        f"order placement answered but {detail}; the order(s) may or may not exist",
        order_ids=tuple(ids),
        reason="unreadable answer",
        source="venue",
    )


def _check_id(served: str, computed: str, who: str) -> None:
    if served and served.lower() != computed.lower():
        # Our hash is how the OMS tracks the order; a different venue id means a signing/domain bug.
        log.error("%s: venue order id %s differs from the computed hash %s", who, served, computed)


async def _paginate(fetch: Callable[[str], Awaitable[models.Page[T]]]) -> AsyncIterator[T]:
    cursor = models.FIRST_CURSOR
    seen = {cursor}
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        if page.last:
            return
        if page.next_cursor in seen:
            raise models.malformed(f"pagination cursor {page.next_cursor!r} repeats", cursor=page.next_cursor)
        seen.add(page.next_cursor)
        cursor = page.next_cursor
