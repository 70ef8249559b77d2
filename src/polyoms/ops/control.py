"""The daemon's local control API: JSON over HTTP on 127.0.0.1, for the CLI and (later) the dashboard.

Key rules, detailed on `make_app` (which also lists the endpoints):

* every request carries `Authorization: Bearer <token>`, the token generated when the daemon starts and
  written to `<state_dir>/control.token` (mode 0600); requests from anything but loopback are refused;
* typed errors become answers naming the error class; messages pass through the redactor, and no
  endpoint returns a key, an API secret or the token;
* a local process without the token cannot lock the operator out (`net.http_guard`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from aiohttp import web

from polyoms.core.errors import AuthError, InputError, PolyomsError, VenueError
from polyoms.net.http_guard import ConnectionGuard, GuardedServer, GuardLimits
from polyoms.oms.errors import RiskRejectedError, UnknownOrderError
from polyoms.ops import schema as api
from polyoms.ops.desk import Desk
from polyoms.polymarket.client.redact import redact

log = logging.getLogger(__name__)
P: Final = api.API_PREFIX
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DESK: Final = web.AppKey("desk", Desk)
StatusFn = Callable[[], dict[str, Any]]
STATUS: Final[web.AppKey[StatusFn]] = web.AppKey("status")
GUARD: Final = web.AppKey("guard", ConnectionGuard)
MAX_QUERY_LEN: Final = 200


class ControlAuthError(AuthError):
    """The control API refused a request: no token, or the wrong one."""


def status_of(exc: PolyomsError) -> int:
    if isinstance(exc, ControlAuthError):
        return 401
    if isinstance(exc, UnknownOrderError):
        return 404
    if isinstance(exc, RiskRejectedError):
        return 409
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, VenueError):
        return 502
    return 409


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(body=api.encode(obj), status=status, content_type="application/json")


def _error(exc: PolyomsError, status: int | None = None) -> web.Response:
    view = api.ErrorView(type(exc).__name__, redact(str(exc)), exc.source)
    return _json(view, status or status_of(exc))


def _http_error(exc: web.HTTPException) -> web.Response:
    """An aiohttp refusal (404, 405, 413...) as the typed JSON error every other answer uses."""
    name = type(exc).__name__.removeprefix("HTTP") or "HTTPError"
    default = f"{exc.status}: {exc.reason}"
    message = exc.reason if not exc.text or exc.text == default else exc.text
    resp = _json(api.ErrorView(name, redact(message)), exc.status)
    if "Allow" in exc.headers:
        resp.headers["Allow"] = exc.headers["Allow"]
    if exc.headers.get("Connection", "").lower() == "close":
        resp.force_close()
    return resp


def _given_token(request: web.Request) -> bytes:
    # Header bytes that are not UTF-8 arrive as surrogates: encoded leniently, they simply do not match.
    return request.headers.get("Authorization", "").encode("utf-8", "replace")


def _loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def make_app(
    desk: Desk, token: str, status: Callable[[], dict[str, Any]], *, limits: GuardLimits | None = None
) -> web.Application:
    """The control API's app over `desk`.

    Every request carries `Authorization: Bearer <token>`; the token is generated when the daemon starts
    and written to `<state_dir>/control.token` (mode 0600, nothing else in it). Requests from anything but
    loopback are refused whatever they carry. Typed errors become 4xx answers naming the error class:

        {"error": "InvalidPriceError", "message": "...", "source": "local"}

    400 bad input (nothing was changed), 401 missing/wrong token, 404 unknown order or parent, 409 refused by
    the OMS's state (admission closed, risk limit, balance), 502 the venue failed. HTTP-level refusals (no such
    endpoint, wrong method, body too large or too slow) are typed the same way (`NotFound`, `MethodNotAllowed`,
    `RequestEntityTooLarge`, `RequestTimeout`), and only after the token was checked. Messages pass through
    the redactor, and no endpoint returns a key, an API secret or the token.

    A local process without the token cannot lock the operator out: connections are capped, slow or silent
    ones closed, the operator's evicted last (`net.http_guard`).

        GET    /v1/status                  daemon, venue, wallet, admission
        POST   /v1/orders                  OrderBody -> OrderAccepted (limit, market, or a parent with `algo`)
        GET    /v1/orders[?open=1]         OrderList
        GET    /v1/orders/{id}             OrderView with audit trail and fills (or ParentView for a parent id)
        DELETE /v1/orders/{id}             cancel one order (or a parent and its children)
        DELETE /v1/orders                  stop every parent order, then cancel every open order (admission
                                           stays open)
        GET    /v1/positions               ledger: pUSD tiers and positions, marked to the mid and the bid
        GET    /v1/history[?market=&limit=] fills with fees and tiers, PnL per market
        GET    /v1/pnl[?points=N]          equity curve replayed from the journal (`ops.history`)
        GET    /v1/metrics                 Prometheus text
        POST   /v1/stop                    {"emergency": true}: kill switch + cancel all; else shut the daemon down
        POST   /v1/resume                  reopen admission after an emergency stop
        GET    /v1/markets?q=TEXT&limit=N  market search
        GET    /v1/parents                 ParentList;  GET/DELETE /v1/parents/{id}
    """
    expected = f"Bearer {token}".encode()
    conns = ConnectionGuard(limits)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        proto = request.protocol
        conns.busy(proto)
        try:
            return await checked(request, handler)
        finally:
            conns.idle(proto)

    async def checked(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _loopback(request.remote):
            return _error(ControlAuthError("the control API answers loopback only"), 403)
        if not hmac.compare_digest(_given_token(request), expected):
            return _error(ControlAuthError("missing or wrong control token (see <state_dir>/control.token)"))
        conns.trust(request.protocol)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _http_error(exc)
        except PolyomsError as exc:
            return _error(exc)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return _error(InputError(f"bad request body: {exc}"))
        except Exception as exc:
            log.exception("control API: %s %s failed", request.method, request.path)
            return _json(api.ErrorView("InternalError", redact(f"{type(exc).__name__}: {exc}")), 500)

    app = web.Application(middlewares=[guard], client_max_size=1024 * 1024)
    app[DESK] = desk
    app[STATUS] = status
    app[GUARD] = conns
    r = app.router
    r.add_get(f"{P}/status", get_status)
    r.add_post(f"{P}/orders", add_order)
    r.add_get(f"{P}/orders", list_orders)
    r.add_delete(f"{P}/orders", cancel_all)
    r.add_get(f"{P}/orders/{{order_id}}", order_status)
    r.add_delete(f"{P}/orders/{{order_id}}", cancel_order)
    r.add_get(f"{P}/positions", positions)
    r.add_get(f"{P}/history", history)
    r.add_get(f"{P}/pnl", pnl)
    r.add_get(f"{P}/metrics", metrics)
    r.add_post(f"{P}/stop", stop)
    r.add_post(f"{P}/resume", resume)
    r.add_get(f"{P}/markets", markets)
    r.add_get(f"{P}/parents", list_parents)
    r.add_get(f"{P}/parents/{{parent_id}}", parent_status)
    r.add_delete(f"{P}/parents/{{parent_id}}", cancel_parent)
    return app


def _desk(request: web.Request) -> Desk:
    return request.app[DESK]


async def _body(request: web.Request, typ: type[Any]) -> Any:
    guard = request.app[GUARD]
    try:
        raw = await guard.read_body(request.read())
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the request body did not arrive within {guard.limits.body_timeout_s:g} s",
            headers={"Connection": "close"},
        ) from None
    return msgspec.json.decode(raw or b"{}", type=typ)


async def get_status(request: web.Request) -> web.Response:
    return _json(msgspec.convert(request.app[STATUS](), api.StatusView))


async def add_order(request: web.Request) -> web.Response:
    req = await _body(request, api.OrderBody)
    return _json(await _desk(request).add_order(req))


async def list_orders(request: web.Request) -> web.Response:
    open_only = request.query.get("open", "") in ("1", "true", "yes")
    return _json(_desk(request).list_orders(open_only=open_only))


async def order_status(request: web.Request) -> web.Response:
    return _json(_desk(request).order_status(request.match_info["order_id"]))


async def cancel_order(request: web.Request) -> web.Response:
    return _json(await _desk(request).cancel(request.match_info["order_id"]))


async def cancel_all(request: web.Request) -> web.Response:
    return _json(await _desk(request).cancel_all())


async def positions(request: web.Request) -> web.Response:
    return _json(_desk(request).positions())


def _count_param(request: web.Request, name: str) -> int | None:
    """An optional whole-number query parameter (ASCII digits, at most 6); the desk checks its range."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        raise InputError(f"{name} must be a whole number, got {raw[:20]!r}", field=name)
    return int(raw)


async def history(request: web.Request) -> web.Response:
    market = request.query.get("market") or None
    if market is not None and (len(market) > 100 or not market.isascii()):
        raise InputError("market must be a condition id (0x…)", field="market")
    return _json(_desk(request).history(market=market, limit=_count_param(request, "limit")))


async def pnl(request: web.Request) -> web.Response:
    points = _count_param(request, "points")
    return _json(await _desk(request).pnl(max_points=1000 if points is None else points))


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=_desk(request).metrics(), content_type="text/plain", charset="utf-8")


async def stop(request: web.Request) -> web.Response:
    req = await _body(request, api.StopRequest)
    desk = _desk(request)
    if req.emergency:
        return _json(await desk.emergency_stop(req.reason))
    return _json(desk.shutdown())


async def resume(request: web.Request) -> web.Response:
    return _json(await _desk(request).resume())


async def markets(request: web.Request) -> web.Response:
    text = request.query.get("q", "")
    if len(text) > MAX_QUERY_LEN:
        raise InputError(f"the search text is limited to {MAX_QUERY_LEN} characters", field="q")
    limit = _count_param(request, "limit")  # ASCII digits: str.isdigit() alone accepts "²"
    return _json(await _desk(request).search_markets(text, 20 if limit is None else limit))


async def list_parents(request: web.Request) -> web.Response:
    return _json(_desk(request).list_parents())


async def parent_status(request: web.Request) -> web.Response:
    desk = _desk(request)
    pid = request.match_info["parent_id"]
    if desk.parents is None or not desk.parents.known(pid):
        raise UnknownOrderError(f"unknown parent order {pid}", order_id=pid)
    return _json(desk.parents.status(pid))


async def cancel_parent(request: web.Request) -> web.Response:
    desk = _desk(request)
    pid = request.match_info["parent_id"]
    if desk.parents is None or not desk.parents.known(pid):
        raise UnknownOrderError(f"unknown parent order {pid}", order_id=pid)
    return _json(await desk.cancel(pid))


class ControlServer:
    """The control app bound to 127.0.0.1:port (0 = any free port)."""

    def __init__(
        self,
        desk: Desk,
        token: str,
        status: Callable[[], dict[str, Any]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: GuardLimits | None = None,
    ) -> None:
        if not _loopback(host):
            raise InputError(f"the control API binds to loopback only, not {host!r}")
        self.app = make_app(desk, token, status, limits=limits)
        self.guard = self.app[GUARD]
        self.host = host
        self.port = port
        self._server = GuardedServer(self.app, self.guard, host, port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self.port = await self._server.start()
        return self.url

    async def stop(self) -> None:
        await self._server.stop()
