"""The local exchange's REST API (aiohttp): the venue's paths, status codes, shapes and errors.

Handlers parse the request, call the service or the exchange, and render. Success is always
HTTP 200 (the official Python client treats anything else as an error). Test-only administration
sits under /_sim/, apart from the venue's paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web

from polyoms.core.enums import Side, SignatureType
from polyoms.core.errors import AuthError, ConfigError, InputError, InvalidOrderError, NotFoundError, PolyomsError
from polyoms.core.units import MICRO, fmt_micro, from_micro, to_micro
from polyoms.exchange.api import data_api, gamma, render, render_markets, rewards_routes
from polyoms.exchange.api.binance_stream import BinanceHub
from polyoms.exchange.api.binance_stream import install as install_binance
from polyoms.exchange.api.faults import INTERNAL_ERROR, RESTARTING_MESSAGE
from polyoms.exchange.api.http import (
    decode_json,
    error_body,
    error_response,
    int_query,
    json_response,
    page_body,
    paginate,
    parse_uint,
    query,
    too_deep,
)
from polyoms.exchange.api.service import Caller, SimService
from polyoms.exchange.api.ws import WsHub
from polyoms.exchange.api.ws import install as install_ws
from polyoms.exchange.markets import markets_from_config
from polyoms.exchange.settlement import NEVER as NEVER_MS
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.auth import POLY_TIMESTAMP, verify_l1, verify_l2
from polyoms.polymarket.protocol.wire import (
    PmCancelMarketOrders,
    PmCancelOrder,
    PmOrderEnvelope,
    decode_envelope,
    decode_envelopes,
)

log = logging.getLogger("polyoms.sim")

SERVICE: Final = web.AppKey("service", SimService)
HUB: Final = web.AppKey("ws_hub", WsHub)
BINANCE_HUB: Final = web.AppKey("binance_hub", BinanceHub)
TICK_INTERVAL_S: Final = 0.1
DATA_PAGE: Final = 100
MARKETS_PAGE: Final = 500
MAX_UINT256: Final = str(2**256 - 1)
# UNCONFIRMED: how many trades /markets/live-activity returns is not documented.
LIVE_ACTIVITY_LIMIT: Final = 100
_BUILDER_CODE: Final = re.compile(r"0x[0-9a-fA-F]{64}")
# UNCONFIRMED: how old (or how far ahead) a signed L1/L2 timestamp may be is not documented
# (protocol doc §2.1: "accept at least ±60 s, probably more"). One symmetric window, in seconds.
AUTH_WINDOW_S: Final = 120

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


# --- middleware and auth ---------------------------------------------------------------------------


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.path.startswith(("/_sim/", "/ws/", "/binance/")):
            return await handler(request)
        failure = _http_failure(request)
        if failure is not None:
            return failure
        response = await handler(request)
        # Latency after the work: a client that times out has still had its order placed, the
        # ambiguous outcome a real venue produces and the OMS must resolve by hash.
        latency = _svc(request).faults.http_latency_s()
        if latency:
            await asyncio.sleep(latency)
        return response
    except PolyomsError as exc:
        return error_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response(error_body("internal error"), status=500)


def _svc(request: web.Request) -> SimService:
    return request.app[SERVICE]


def _http_failure(request: web.Request) -> web.Response | None:
    """The venue's HTTP refusals, when switched on (all off by default)."""
    svc = _svc(request)
    faults = svc.faults
    restarting = faults.restarting(svc.clock.now_ms())
    if restarting is not None:
        retry = str(max(1, int(restarting + 0.999)))
        return json_response(error_body(RESTARTING_MESSAGE), status=425, headers={"Retry-After": retry})
    status = faults.http_failure()
    if status == 429:
        headers = {"Retry-After": str(faults.config.retry_after_s)}
        return json_response(error_body(venue_errors.TOO_MANY_REQUESTS), status=429, headers=headers)
    if status is not None:
        return json_response(error_body(INTERNAL_ERROR), status=status)
    return None


def _signed_headers_ok(request: web.Request) -> bool:
    """POLY_* headers are ASCII and the timestamp is fresh (aiohttp hands other bytes on as surrogates)."""
    if not all(v.isascii() for k, v in request.headers.items() if k.upper().startswith("POLY_")):
        return False
    ts = parse_uint(request.headers.get(POLY_TIMESTAMP, ""))
    if ts is None:
        return False
    # The exchange's clock is the venue's. On a virtual clock (tests, backtests) clients still sign
    # with their wall clock unless they sync to GET /time, so either counts as now; on the wall
    # clock (`polyoms sim`, the daemon's exchange) the two are the same.
    now = (_svc(request).clock.now_ms() // 1000, int(time.time()))
    return any(abs(ts - t) <= AUTH_WINDOW_S for t in now)


async def _l2(request: web.Request) -> tuple[Caller, bytes]:
    body = await request.read()
    if not _signed_headers_ok(request):
        raise AuthError(venue_errors.L2_REFUSED, status=401)
    owner, creds, _ = verify_l2(request.headers, request.method, request.path, body, _svc(request).keys.lookup())
    return Caller(owner, creds), body


def _l1(request: web.Request) -> tuple[str, int]:
    if not _signed_headers_ok(request):
        raise AuthError(venue_errors.L1_REFUSED, status=401)
    address, nonce, _ = verify_l1(request.headers, _svc(request).chain_id)
    return address, nonce


def _envelopes(body: bytes, *, batch: bool) -> list[PmOrderEnvelope]:
    # The typed decoders skip unknown fields by recursing too: absurd nesting is refused first.
    if too_deep(body):
        raise InvalidOrderError(venue_errors.INVALID_ORDER_PAYLOAD, status=400)
    try:
        return decode_envelopes(body) if batch else [decode_envelope(body)]
    except RecursionError:
        raise InvalidOrderError(venue_errors.INVALID_ORDER_PAYLOAD, status=400) from None


def _token_param(request: web.Request) -> str:
    token = query(request, "token_id", required=True)
    assert token is not None
    return token


def _creds_body(creds: Any) -> dict[str, str]:
    return {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}


# --- meta ------------------------------------------------------------------------------------------


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def server_time(request: web.Request) -> web.Response:
    return json_response(_svc(request).clock.now_ms() // 1000)


async def version(request: web.Request) -> web.Response:
    return json_response({"version": 2})


# --- API keys --------------------------------------------------------------------------------------


async def create_api_key(request: web.Request) -> web.Response:
    address, nonce = _l1(request)
    return json_response(_creds_body(_svc(request).create_key(address, nonce)))


async def derive_api_key(request: web.Request) -> web.Response:
    address, nonce = _l1(request)
    return json_response(_creds_body(_svc(request).derive_key(address, nonce)))


async def get_api_keys(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    return json_response({"apiKeys": _svc(request).keys.keys_of(caller.address)})


async def delete_api_key(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    _svc(request).keys.delete(caller.api_key)
    return json_response("OK")


async def closed_only(request: web.Request) -> web.Response:
    await _l2(request)
    return json_response({"closed_only": False})


# --- markets ---------------------------------------------------------------------------------------


def _prices(svc: SimService, market: Any) -> tuple[Decimal, Decimal]:
    last = svc.exchange.last_trade(market.yes_token_id)
    yes = last[0] if last else MICRO // 2
    return from_micro(yes), from_micro(MICRO - yes)


def _market_list(render_one: Callable[..., dict[str, Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        svc = _svc(request)
        items = [render_one(m, _prices(svc, m)) for m in svc.exchange.markets()]
        page, cursor = paginate(items, request.query.get("next_cursor"), MARKETS_PAGE)
        return json_response(page_body(page, cursor, MARKETS_PAGE))

    return handler


async def get_market(request: web.Request) -> web.Response:
    svc = _svc(request)
    market = svc.exchange.market(request.match_info["condition_id"])
    return json_response(render_markets.clob_market(market, _prices(svc, market)))


async def clob_market(request: web.Request) -> web.Response:
    market = _svc(request).exchange.market(request.match_info["condition_id"])
    return json_response(render_markets.compact_market(market))


async def markets_by_token(request: web.Request) -> web.Response:
    market = _svc(request).exchange.market_of_token(request.match_info["token_id"])
    return json_response(
        {
            "condition_id": market.condition_id,
            "primary_token_id": market.yes_token_id,
            "secondary_token_id": market.no_token_id,
        }
    )


async def tick_size(request: web.Request) -> web.Response:
    market = _svc(request).exchange.market_of_token(_token_param(request))
    return json_response({"minimum_tick_size": Decimal(market.tick.text)})


async def neg_risk(request: web.Request) -> web.Response:
    market = _svc(request).exchange.market_of_token(_token_param(request))
    return json_response({"neg_risk": market.neg_risk})


async def fee_rate(request: web.Request) -> web.Response:
    # V1 legacy (V2 fees are not signed; the curve is /clob-markets `fd`): the same figure as
    # `taker_base_fee`, `tbf` and the trades' `fee_rate_bps` (render_markets.fee_rate_bps).
    market = _svc(request).exchange.market_of_token(_token_param(request))
    return json_response({"base_fee": render_markets.fee_rate_bps(market)})


async def builder_fees(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if not _BUILDER_CODE.fullmatch(code):
        raise InputError(f"invalid builder code: {code[:80]}", status=400)
    # The local exchange registers no builder codes and charges no builder fees: every well-formed
    # code is unknown, which the venue answers with a 404 (doc §2.4; a known one gets
    # {"builder_maker_fee_rate_bps", "builder_taker_fee_rate_bps"}).
    raise NotFoundError(f"builder code not found: {code}", status=404)


async def live_activity(request: web.Request) -> web.Response:
    """GET /markets/live-activity/{condition_id}: the market's latest trades, newest first (doc §4.5)."""
    svc = _svc(request)
    market = svc.exchange.market(request.match_info["condition_id"])
    cid = market.condition_id.lower()
    recent = [t for t in reversed(svc.exchange.all_trades) if t.market.lower() == cid][:LIVE_ACTIVITY_LIMIT]
    return json_response([render_markets.market_trade_event(market, t) for t in recent])


# --- book and prices -------------------------------------------------------------------------------


def _book_body(svc: SimService, token_id: str) -> dict[str, Any]:
    view = svc.exchange.book(token_id)
    last = svc.exchange.last_trade(token_id)
    return render.book(view, svc.exchange.market_of_token(token_id), svc.clock.now_ms(), last[0] if last else None)


def _token_list(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, list) or not all(isinstance(p, dict) and "token_id" in p for p in payload):
        raise InputError('expected a JSON array of {"token_id": ...}', status=400)
    return payload


async def get_book(request: web.Request) -> web.Response:
    return json_response(_book_body(_svc(request), _token_param(request)))


async def post_books(request: web.Request) -> web.Response:
    svc = _svc(request)
    items = _token_list(decode_json(await request.read()))
    return json_response([_book_body(svc, str(p["token_id"])) for p in items])


def _best(svc: SimService, token_id: str) -> tuple[int, int]:
    """Best bid and ask with the market channel's convention for an empty side: bid 0, ask 1."""
    bid, ask = svc.exchange.best_bid_ask(token_id)
    return (0 if bid is None else bid), (MICRO if ask is None else ask)


def _side_price(svc: SimService, token_id: str, side: str) -> str:
    bid, ask = _best(svc, token_id)
    # side names the resting side: BUY -> best bid, SELL -> best ask (doc §4.3).
    return fmt_micro(bid if Side.parse(side) is Side.BUY else ask)


def _mid(svc: SimService, token_id: str) -> str:
    bid, ask = _best(svc, token_id)
    return str(from_micro(bid + ask) / 2)


async def get_price(request: web.Request) -> web.Response:
    side = query(request, "side", required=True)
    assert side is not None
    return json_response({"price": _side_price(_svc(request), _token_param(request), side)})


async def post_prices(request: web.Request) -> web.Response:
    svc = _svc(request)
    out: dict[str, dict[str, str]] = {}
    for p in _token_list(decode_json(await request.read())):
        side = str(p.get("side", "BUY"))
        out.setdefault(str(p["token_id"]), {})[Side.parse(side).name] = _side_price(svc, str(p["token_id"]), side)
    return json_response(out)


async def get_midpoint(request: web.Request) -> web.Response:
    mid = _mid(_svc(request), _token_param(request))
    return json_response({"mid": mid, "mid_price": mid})


async def post_midpoints(request: web.Request) -> web.Response:
    svc = _svc(request)
    return json_response(
        {str(p["token_id"]): _mid(svc, str(p["token_id"])) for p in _token_list(decode_json(await request.read()))}
    )


def _spread(svc: SimService, token_id: str) -> str:
    bid, ask = _best(svc, token_id)
    return fmt_micro(ask - bid)


async def get_spread(request: web.Request) -> web.Response:
    return json_response({"spread": _spread(_svc(request), _token_param(request))})


async def post_spreads(request: web.Request) -> web.Response:
    svc = _svc(request)
    return json_response(
        {str(p["token_id"]): _spread(svc, str(p["token_id"])) for p in _token_list(decode_json(await request.read()))}
    )


def _last_trade(svc: SimService, token_id: str) -> dict[str, str]:
    last = svc.exchange.last_trade(token_id)
    if last is None:
        return {"price": "0.5", "side": ""}
    return {"price": fmt_micro(last[0]), "side": last[1].name}


async def get_last_trade_price(request: web.Request) -> web.Response:
    return json_response(_last_trade(_svc(request), _token_param(request)))


async def post_last_trades_prices(request: web.Request) -> web.Response:
    svc = _svc(request)
    items = _token_list(decode_json(await request.read()))
    return json_response([{"token_id": str(p["token_id"]), **_last_trade(svc, str(p["token_id"]))} for p in items])


async def prices_history(request: web.Request) -> web.Response:
    svc = _svc(request)
    token = query(request, "market", required=True)
    assert token is not None
    svc.exchange.market_of_token(token)
    start = int_query(request, "startTs") or 0
    end = int_query(request, "endTs") or None
    history = []
    # Through the exchange's query, so archived trades (exchange/history) are in the history too.
    for t in svc.exchange.trades(asset_id=token, after=start, before=end):
        price = t.price if t.asset_id == token else MICRO - t.price
        history.append({"t": t.match_time, "p": from_micro(price)})
    return json_response({"history": history})


# --- orders ----------------------------------------------------------------------------------------


def _wake_for_delayed(svc: SimService) -> None:
    """Release held orders when the first is due, not at the next tick (the taker delay is 250 ms)."""
    due = svc.delayed.next_ms
    if due >= NEVER_MS:
        return

    def release() -> None:
        try:
            svc.release_due()
        except Exception:  # a timer must never die silently
            log.exception("releasing delayed orders failed")

    asyncio.get_running_loop().call_later(max(0, due - svc.clock.now_ms()) / 1000, release)


async def post_order(request: web.Request) -> web.Response:
    caller, body = await _l2(request)
    svc = _svc(request)
    result = svc.submit(caller, _envelopes(body, batch=False)[0])
    if result.status == "delayed":
        _wake_for_delayed(svc)
    return json_response(render.order_response(result))


async def post_orders(request: web.Request) -> web.Response:
    caller, body = await _l2(request)
    out = []
    svc = _svc(request)
    delayed = False
    for order_id, outcome in svc.submit_batch(caller, _envelopes(body, batch=True)):
        if isinstance(outcome, PolyomsError):
            out.append(render.order_failure(order_id, outcome.message))
        else:
            delayed |= outcome.status == "delayed"
            out.append(render.order_response(outcome))
    if delayed:
        _wake_for_delayed(svc)
    return json_response(out)


_cancel_order: Final = msgspec.json.Decoder(PmCancelOrder)
_cancel_orders: Final = msgspec.json.Decoder(list[str])
_cancel_market: Final = msgspec.json.Decoder(PmCancelMarketOrders)


def _cancel_request(body: bytes, decoder: msgspec.json.Decoder[T], empty: T | None = None) -> T:
    """A cancel body by its wire schema (`empty` stands for no body where one is optional), or a 400."""
    if not body and empty is not None:
        return empty
    if too_deep(body):
        raise InputError(venue_errors.INVALID_ORDER_PAYLOAD, status=400)
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise InputError(venue_errors.INVALID_ORDER_PAYLOAD, status=400) from None


async def cancel_order(request: web.Request) -> web.Response:
    caller, body = await _l2(request)
    payload = _cancel_request(body, _cancel_order)
    return json_response(render.cancel_answer(_svc(request).cancel(caller, [payload.orderID])))


async def cancel_orders(request: web.Request) -> web.Response:
    caller, body = await _l2(request)
    ids = _cancel_request(body, _cancel_orders)
    if len(ids) > 1000:
        raise InputError(venue_errors.too_many_orders(len(ids), 1000), status=400)
    return json_response(render.cancel_answer(_svc(request).cancel(caller, ids)))


async def cancel_all(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    return json_response(render.cancel_answer(_svc(request).exchange.cancel_all(caller.api_key)))


async def cancel_market_orders(request: web.Request) -> web.Response:
    caller, body = await _l2(request)
    payload = _cancel_request(body, _cancel_market, PmCancelMarketOrders())
    result = _svc(request).exchange.cancel_market(
        caller.api_key, market=payload.market or None, asset_id=payload.asset_id or None
    )
    return json_response(render.cancel_answer(result))


async def get_order(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    svc = _svc(request)
    order_id = request.match_info["order_id"]
    order = svc.exchange.get_order(order_id) or svc.held_order(order_id)
    if order is None or order.owner != caller.api_key:
        raise NotFoundError("order not found", status=404)
    return json_response(render.open_order(order))


async def get_orders(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    orders = _svc(request).exchange.open_orders(
        caller.api_key,
        order_id=query(request, "id"),
        market=query(request, "market"),
        asset_id=query(request, "asset_id"),
    )
    page, cursor = paginate([render.open_order(o) for o in orders], request.query.get("next_cursor"), DATA_PAGE)
    return json_response(page_body(page, cursor, DATA_PAGE))


async def get_trades(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    trades = _svc(request).exchange.trades(
        caller.api_key,
        trade_id=query(request, "id"),
        maker_address=query(request, "maker_address"),
        market=query(request, "market"),
        asset_id=query(request, "asset_id"),
        before=int_query(request, "before"),
        after=int_query(request, "after"),
    )
    rendered = [render.trade(t, caller.api_key) for t in trades]
    page, cursor = paginate(rendered, request.query.get("next_cursor"), DATA_PAGE)
    return json_response(page_body(page, cursor, DATA_PAGE))


async def pre_migration_orders(request: web.Request) -> web.Response:
    await _l2(request)
    return json_response(page_body([], "LTE=", DATA_PAGE))


# --- account ---------------------------------------------------------------------------------------


async def balance_allowance(request: web.Request) -> web.Response:
    caller, _ = await _l2(request)
    svc = _svc(request)
    asset_type = (query(request, "asset_type") or "COLLATERAL").upper()
    signature_type = int_query(request, "signature_type", maximum=max(SignatureType)) or 0
    balances = svc.exchange.balances(svc.funder_of(caller.address, signature_type))
    if asset_type == "COLLATERAL":
        balance, allowance = balances.pusd, balances.pusd_allowance
    elif asset_type == "CONDITIONAL":
        token = query(request, "token_id", required=True)
        assert token is not None
        held = balances.token(token)
        balance, allowance = held.balance, held.allowance
    else:
        raise InputError(f"invalid asset_type: {asset_type}", status=400)
    spenders = (constants.CTF_EXCHANGE_V2, constants.NEG_RISK_CTF_EXCHANGE_V2, constants.NEG_RISK_ADAPTER)
    allowance_text = MAX_UINT256 if allowance >= 2**256 - 1 else str(allowance)
    return json_response(render.balance_allowance(balance, allowance_text, spenders))


async def heartbeat(request: web.Request) -> web.Response:
    caller, body = await _l2(request)
    payload = decode_json(body) or {}
    hb_id = payload.get("heartbeat_id") if isinstance(payload, dict) else None
    accepted, next_id = _svc(request).heartbeat(caller, hb_id if isinstance(hb_id, str) else None)
    if not accepted:
        return json_response(error_body(venue_errors.INVALID_HEARTBEAT, heartbeat_id=next_id), status=400)
    return json_response({"heartbeat_id": next_id})


async def notifications(request: web.Request) -> web.Response:
    await _l2(request)
    return json_response([] if request.method == "GET" else "OK")


# --- simulator administration (not part of the venue) ---------------------------------------------


# Bounds of the simulator's administration (not the venue's): one call funds at most this much, a
# call lists at most this many markets and the exchange holds at most this many.
MAX_FUND_PUSD: Final = 10**12
MAX_FUND_SHARES: Final = 10**12
MAX_FUND_TOKENS: Final = 100
MAX_SIM_MARKETS_PER_CALL: Final = 100
MAX_SIM_MARKETS: Final = 5_000
MAX_SIM_BODY: Final = 1024 * 1024
_FUND_KEYS: Final = frozenset({"address", "pusd", "tokens", "owner", "signature_type"})


async def _sim_payload(request: web.Request) -> dict[str, Any]:
    """The JSON object of a /_sim call, or a 400."""
    if request.content_length is not None and request.content_length > MAX_SIM_BODY:
        raise InputError(f"request body larger than {MAX_SIM_BODY} bytes", status=400)
    body = await request.content.read(MAX_SIM_BODY + 1)
    if len(body) > MAX_SIM_BODY:
        raise InputError(f"request body larger than {MAX_SIM_BODY} bytes", status=400)
    payload = decode_json(body, "invalid JSON")
    if not isinstance(payload, dict):
        raise InputError("expected a JSON object", status=400)
    return payload


def _fund_amount(value: Any, what: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"{what} must be a decimal string", status=400)
    amount = to_micro(value, what)  # exact or InputError
    if not 0 <= amount <= maximum * MICRO:
        raise InputError(f"{what} must be within [0, {maximum}]", status=400)
    return amount


async def sim_fund(request: web.Request) -> web.Response:
    """POST /_sim/fund {"address": "0x…", "pusd": "1000", "tokens": {"<token id>": "50"}}."""
    svc = _svc(request)
    payload = await _sim_payload(request)
    unknown = sorted(set(payload) - _FUND_KEYS)
    if unknown or not isinstance(payload.get("address"), str):
        raise InputError('expected {"address": "0x…", "pusd": "…", "tokens": {…}}', status=400)
    tokens_in = payload.get("tokens") or {}
    if not isinstance(tokens_in, dict) or len(tokens_in) > MAX_FUND_TOKENS:
        raise InputError(f"tokens must be an object of at most {MAX_FUND_TOKENS} token id -> amount", status=400)
    pusd = _fund_amount(payload.get("pusd", "0"), "pusd", MAX_FUND_PUSD)
    tokens = {str(k): _fund_amount(v, "token amount", MAX_FUND_SHARES) for k, v in tokens_in.items()}
    owner, signature_type = payload.get("owner"), payload.get("signature_type")
    if owner is not None or signature_type is not None:
        valid_type = isinstance(signature_type, int) and not isinstance(signature_type, bool)
        if not isinstance(owner, str) or not valid_type or signature_type not in set(SignatureType):
            raise InputError("owner must be an address and signature_type one of 0, 1, 2, 3", status=400)
    address = payload["address"]
    svc.fund(address, pusd, tokens)
    if isinstance(owner, str) and isinstance(signature_type, int):
        svc.link_wallet(owner, signature_type, address)
    b = svc.exchange.balances(address)
    return json_response(
        {
            "address": address,
            "pusd": fmt_micro(b.pusd),
            "tokens": {t: fmt_micro(v.balance) for t, v in b.tokens.items()},
        }
    )


async def sim_markets(request: web.Request) -> web.Response:
    """POST /_sim/markets {"markets": [...], "neg_risk_events": [...]}: list markets while running
    (same format as the config file); subscribers with custom features get `new_market`."""
    svc = _svc(request)
    payload = await _sim_payload(request)
    try:
        specs = markets_from_config(payload)
    except ConfigError as exc:
        raise InputError(exc.message, status=400) from None
    if len(specs) > MAX_SIM_MARKETS_PER_CALL or len(svc.exchange.markets()) + len(specs) > MAX_SIM_MARKETS:
        raise InputError(
            f"at most {MAX_SIM_MARKETS_PER_CALL} markets per call and {MAX_SIM_MARKETS} in all", status=400
        )
    try:
        for spec in specs:
            svc.exchange.add_market(spec)
    except (ConfigError, InputError) as exc:
        raise InputError(exc.message, status=400) from None
    return json_response({"added": [render_markets.compact_market(s) for s in specs]})


async def sim_faults(request: web.Request) -> web.Response:
    """GET: the fault switches. POST: change some ({"ws_drop_rate": 0.1}), {"restart": true}, {"reset": true}."""
    svc = _svc(request)
    if request.method == "POST":
        changes = await _sim_payload(request)
        reset, restart = changes.pop("reset", False), changes.pop("restart", False)
        if not isinstance(reset, bool) or not isinstance(restart, bool):
            raise InputError("reset and restart must be true or false", status=400)
        if reset:
            svc.faults.reset()
        try:
            svc.faults.update(changes)
        except PolyomsError as exc:
            raise InputError(exc.message, status=400) from None
        svc.apply_fault_config()
        if restart:
            svc.faults.restart(svc.clock.now_ms())
    faults = svc.faults
    now = svc.clock.now_ms()
    return json_response(
        {
            **asdict(faults.config),
            "restarting_s": faults.restarting(now),
            "post_only_s": faults.post_only(now),
        }
    )


# --- application -----------------------------------------------------------------------------------


async def _ticker(app: web.Application) -> AsyncIterator[None]:
    svc = app[SERVICE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            try:
                svc.tick()
            except Exception:  # a timer must never die silently; log and keep ticking
                log.exception("sim tick failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def make_app(service: SimService) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=8 * 1024 * 1024)
    app[SERVICE] = service
    app.cleanup_ctx.append(_ticker)
    r = app.router
    r.add_get("/", ok)
    r.add_get("/ok", ok)
    r.add_get("/time", server_time)
    r.add_get("/version", version)
    r.add_post("/auth/api-key", create_api_key)
    r.add_get("/auth/derive-api-key", derive_api_key)
    r.add_get("/auth/api-keys", get_api_keys)
    r.add_delete("/auth/api-key", delete_api_key)
    r.add_get("/auth/ban-status/closed-only", closed_only)
    r.add_get("/markets", _market_list(render_markets.clob_market))
    r.add_get("/sampling-markets", _market_list(render_markets.clob_market))
    r.add_get("/simplified-markets", _market_list(render_markets.simplified_market))
    r.add_get("/sampling-simplified-markets", _market_list(render_markets.simplified_market))
    r.add_get("/markets/{condition_id}", get_market)
    r.add_get("/clob-markets/{condition_id}", clob_market)
    r.add_get("/markets-by-token/{token_id}", markets_by_token)
    r.add_get("/tick-size", tick_size)
    r.add_get("/neg-risk", neg_risk)
    r.add_get("/fee-rate", fee_rate)
    r.add_get("/fees/builder-fees/{code}", builder_fees)
    r.add_get("/markets/live-activity/{condition_id}", live_activity)
    r.add_get("/book", get_book)
    r.add_post("/books", post_books)
    r.add_get("/price", get_price)
    r.add_post("/prices", post_prices)
    r.add_get("/midpoint", get_midpoint)
    r.add_post("/midpoints", post_midpoints)
    r.add_get("/spread", get_spread)
    r.add_post("/spreads", post_spreads)
    r.add_get("/last-trade-price", get_last_trade_price)
    r.add_post("/last-trades-prices", post_last_trades_prices)
    r.add_get("/prices-history", prices_history)
    r.add_post("/order", post_order)
    r.add_post("/orders", post_orders)
    r.add_delete("/order", cancel_order)
    r.add_delete("/orders", cancel_orders)
    r.add_delete("/cancel-all", cancel_all)
    r.add_delete("/cancel-market-orders", cancel_market_orders)
    r.add_get("/data/order/{order_id}", get_order)
    r.add_get("/data/orders", get_orders)
    r.add_get("/data/trades", get_trades)
    r.add_get("/data/pre-migration-orders", pre_migration_orders)
    r.add_get("/balance-allowance", balance_allowance)
    r.add_get("/balance-allowance/update", balance_allowance)
    r.add_post("/v1/heartbeats", heartbeat)
    rewards_routes.add_routes(r)
    r.add_get("/notifications", notifications)
    r.add_delete("/notifications", notifications)
    r.add_post("/_sim/fund", sim_fund)
    r.add_post("/_sim/markets", sim_markets)
    r.add_get("/_sim/faults", sim_faults)
    r.add_post("/_sim/faults", sim_faults)
    gamma.add_routes(r)
    data_api.add_routes(r)
    app[HUB] = WsHub(service)
    app[BINANCE_HUB] = BinanceHub(service.clock)
    if service.life is not None:
        service.life.add_price_listener(app[HUB].publish_price)
        service.life.add_price_listener(app[BINANCE_HUB].publish)
    app[HUB].transform = lambda conn, frame: service.faults.ws_transform(conn, frame, service.clock.now_ms())
    install_ws(app, app[HUB])
    install_binance(app, app[BINANCE_HUB])
    return app
