"""CLI commands that drive a running daemon through its local control API.

`polyoms order add|list|status|cancel`, `positions`, `metrics`, `status`, `stop [--emergency]`, `resume`,
`markets search`. The daemon is found through its state dir (`--state-dir`, POLYOMS_STATE_DIR,
default ~/.polyoms: control.url and control.token, written by `polyoms run`), or `--url` / `--token`
(POLYOMS_CONTROL_URL / POLYOMS_CONTROL_TOKEN).

Exit codes: 0 done; 1 refused by the daemon (admission closed, risk, balance), refused by the venue
(`order add` waits for its answer: post-only that would cross, FOK that cannot fill...) or a venue
failure; 2 bad input (nothing was sent, or the daemon refused it as bad input: nothing changed); 3 no
daemon reachable, or the token was refused; 4 `order add` sent the order but no final answer came within
--wait (it may still rest or fill: `polyoms order status ID`).

Ids: `order status` and `order cancel` take an order id (0x…) or parent id whole or by a unique prefix
(at least 4 characters); an ambiguous prefix is refused with the matching ids. `--watch` (order status)
and the parent follow of `order add` print one line per change when stdout is not a terminal.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from polyoms.algos.catalog import orderable
from polyoms.cli import order as order_cli
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import MICRO, plain_micro, to_micro
from polyoms.ops import schema as api
from polyoms.ops.config import DEFAULT_STATE_DIR, ENV_STATE_DIR
from polyoms.ops.daemon import read_endpoint
from polyoms.ops.desk import check_request

T = TypeVar("T")
EXIT_REFUSED, EXIT_INPUT, EXIT_NO_DAEMON, EXIT_PENDING = 1, 2, 3, 4
DEFAULT_WAIT_S = 10.0
"""How long `order add` waits for the venue's answer by default (--wait)."""
ENV_URL, ENV_TOKEN = "POLYOMS_CONTROL_URL", "POLYOMS_CONTROL_TOKEN"

markets_app = typer.Typer(help="Find markets and their token ids.", no_args_is_help=True)

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help=f"The daemon's state dir (${ENV_STATE_DIR}, default {DEFAULT_STATE_DIR})."),
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help=f"Control API URL (${ENV_URL}); default: from the state dir.")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help=f"Control token (${ENV_TOKEN}); default: from the state dir.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the daemon's JSON answer.")]


class CtlError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


class ControlClient:
    """A tiny synchronous client of the control API (stdlib only: it talks to 127.0.0.1)."""

    def __init__(self, url: str, token: str, timeout_s: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    @classmethod
    def locate(cls, state_dir: Path | None, url: str | None, token: str | None) -> ControlClient:
        url = url or os.environ.get(ENV_URL) or None
        token = token or os.environ.get(ENV_TOKEN) or None
        if url is None or token is None:
            d = (state_dir or Path(os.environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR)).expanduser()
            ep = read_endpoint(d)
            if ep is None:
                raise CtlError(
                    f"no running daemon found in {d} (no control.url / control.token): start one with "
                    f"`polyoms run`, or pass --state-dir / --url and --token",
                    EXIT_NO_DAEMON,
                )
            url, token = url or ep.url, token or ep.token
        return cls(url, token)

    def call(
        self,
        method: str,
        path: str,
        typ: type[T],
        *,
        body: object | None = None,
        params: dict[str, str] | None = None,
    ) -> T:
        raw = self.raw(method, path, body=body, params=params)
        try:
            return msgspec.json.decode(raw, type=typ)
        except msgspec.DecodeError as exc:
            raise CtlError(f"unreadable answer from the daemon: {exc}", EXIT_REFUSED) from None

    def raw(self, method: str, path: str, *, body: object | None = None, params: dict[str, str] | None = None) -> bytes:
        url = f"{self.url}{api.API_PREFIX}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else msgspec.json.encode(body)
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                out: bytes = resp.read()
                return out
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CtlError(
                f"cannot reach the daemon at {self.url}: {reason}. Is `polyoms run` running?", EXIT_NO_DAEMON
            ) from None


def _http_error(exc: urllib.error.HTTPError) -> CtlError:
    body = exc.read()
    try:
        err = msgspec.json.decode(body, type=api.ErrorView)
        text = f"{err.message} [{err.error}]"
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace")[:300] or exc.reason
    if exc.code in (401, 403):
        return CtlError(f"the daemon refused the control token: {text}", EXIT_NO_DAEMON)
    if exc.code in (400, 404):
        return CtlError(text, EXIT_INPUT)
    return CtlError(text, EXIT_REFUSED)


def _run(fn: Callable[[], None]) -> None:
    try:
        fn()
    except CtlError as exc:
        raise _fail(exc.message, exc.code) from None
    except PolyomsError as exc:  # refused before anything was sent; named like the daemon's answers
        raise _fail(f"{exc} [{type(exc).__name__}]", EXIT_INPUT) from None


def _console() -> Console:
    console = Console()
    # Ids and token ids must never fold across lines (80 columns when stdout is not a terminal).
    return console if console.width >= 160 else Console(width=160)


def _id_column(table: Table, index: int, header: str, ids: list[str]) -> None:
    """An id column that never folds nor ellipsizes (ids are copied from here)."""
    table.add_column(header, no_wrap=True, min_width=max((len(i) for i in ids), default=len(header)))
    # add_column appends: move it where the rows expect it.
    table.columns.insert(index, table.columns.pop())


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(msgspec.to_builtins(obj), indent=2))


def _ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3] if ms else "-"


# --- order add / list / status / cancel ----------------------------------------------------------------


def _check_decimal(value: str | None, what: str, *, positive: bool = True) -> None:
    if value is None:
        return
    micro = plain_micro(value, what)  # a plain decimal, exact, or InvalidAmountError (exit 2)
    if positive and micro <= 0:
        raise CtlError(f"{what} must be positive, got {value}", EXIT_INPUT)


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CtlError(f"--param takes KEY=VALUE, got {item!r}", EXIT_INPUT)
        out[key.strip()] = value.strip()
    return out


def order_add(
    token_id: Annotated[str, typer.Option("--token-id", help="Outcome token id (decimal; see `markets search`).")],
    side: Annotated[str, typer.Option("--side", help="BUY or SELL.")],
    price: Annotated[
        str | None, typer.Option("--price", help="Limit price; for a market order the worst price (default: book).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            "--size", help="Shares (limit orders, market SELL, parents). With --kelly: the most Kelly may size (a cap)."
        ),
    ] = None,
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount",
            help="pUSD to spend (market BUY), taker fee included: the order buys what is left once the fee is "
            "set aside (walked from the book); the answer shows both.",
        ),
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="limit or market.")] = "limit",
    order_type: Annotated[
        str | None, typer.Option("--order-type", help="GTC/GTD (limit, default GTC), FOK/FAK (market, default FOK).")
    ] = None,
    post_only: Annotated[bool, typer.Option("--post-only", help="Refuse instead of taking liquidity.")] = False,
    expiration: Annotated[
        int, typer.Option("--expiration", help="GTD expiry, unix seconds (only with --order-type GTD).")
    ] = 0,
    algo: Annotated[
        str | None,
        typer.Option("--algo", help=f"Parent order: {', '.join(e.name for e in orderable())} (`order algos`)."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Algo parameter KEY=VALUE (repeat; `order algos` lists them).")
    ] = None,
    kelly_prob: Annotated[
        str | None,
        typer.Option(
            "--kelly",
            help="Size by Kelly: your probability that the token pays out. --size, if given too, caps the size "
            "(the answer says what Kelly sized and what was placed).",
        ),
    ] = None,
    kelly_fraction: Annotated[str, typer.Option("--kelly-fraction", help="Fraction of full Kelly.")] = "0.25",
    bankroll: Annotated[
        str | None, typer.Option("--bankroll", help="pUSD to size Kelly against (default: available).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm an order above the confirmation threshold.")] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help=f"Wait up to SECONDS for the outcome: the venue's answer to an order (default {DEFAULT_WAIT_S:g}; "
            f"at most {api.MAX_WAIT_MS // 1000}), a parent order's end (default: until it is done).",
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once the order is sent (its outcome: `order status`).")
    ] = False,
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Place an order (limit, market, or a parent order run by an execution algorithm; Kelly-sized)."""

    def go() -> None:
        Side.parse(side)
        k = kind.strip().lower()
        if k not in ("limit", "market"):
            raise CtlError(f"--kind must be limit or market, got {kind!r}", EXIT_INPUT)
        if order_type is not None:
            OrderType.parse(order_type)
        if wait is not None and not 0 <= wait <= api.MAX_WAIT_MS / 1000:
            raise CtlError(f"--wait must be within [0, {api.MAX_WAIT_MS // 1000}] seconds, got {wait:g}", EXIT_INPUT)
        if wait is not None and no_wait:
            raise CtlError("give --wait SECONDS or --no-wait, not both", EXIT_INPUT)
        _check_decimal(price, "price")
        if price is not None and not 0 < to_micro(price, "price") < MICRO:
            raise CtlError(f"price must be inside (0, 1), got {price}", EXIT_INPUT)
        _check_decimal(size, "size")
        _check_decimal(amount, "amount")
        _check_decimal(bankroll, "bankroll")
        kelly = None
        if kelly_prob is not None:
            _check_decimal(kelly_prob, "kelly probability")
            _check_decimal(kelly_fraction, "kelly fraction")
            kelly = api.KellyRequest(prob=kelly_prob, fraction=kelly_fraction, bankroll=bankroll)
        req = api.OrderBody(
            token_id=token_id.strip(),
            side=side,
            kind=k,
            price=price,
            size=size,
            amount=amount,
            order_type=order_type,
            post_only=post_only,
            expiration=expiration,
            algo=algo,
            algo_params=_params(param or []),
            kelly=kelly,
            confirm=yes,
            wait_ms=0 if no_wait or algo is not None else int((DEFAULT_WAIT_S if wait is None else wait) * 1000),
        )
        check_request(req)  # the daemon's own gate, before anything is sent
        client = ControlClient.locate(state_dir, url, token)
        client.timeout_s += req.wait_ms / 1000
        acc = client.call("POST", "/orders", api.OrderAccepted, body=req)
        if as_json:
            _print_json(acc)
        elif acc.parent_id is not None:
            typer.echo(f"parent {acc.parent_id}: {acc.kind} {acc.side} {acc.size} of token {acc.token_id}")
        else:
            what = f"{acc.amount} pUSD" if acc.amount else f"{acc.size} shares"
            typer.echo(f"order {acc.order_id}: {acc.side} {what} @ {acc.price} {acc.order_type} ({acc.kind})")
        if acc.note and not as_json:
            typer.echo(f"  {acc.note}")
        if acc.parent_id is not None and not no_wait and not as_json:
            _follow_parent(client, acc.parent_id, max_s=wait)
        if acc.order is not None:
            _report_outcome(acc, quiet=as_json)

    _run(go)


def _report_outcome(acc: api.OrderAccepted, *, quiet: bool) -> None:
    """The venue's answer to an order `order add` waited for: its state, fills and fees; a refusal or no
    answer in time exits non-zero (EXIT_REFUSED, EXIT_PENDING)."""
    o = acc.order
    assert o is not None
    if not quiet:
        unit = "pUSD" if o.size_unit == "pUSD" else "shares"
        avg = f" @ avg {o.avg_price}" if o.avg_price else ""
        typer.echo(f"  {acc.outcome}: {o.state}, filled {o.filled}/{o.size} {unit}{avg}, fees {o.fees} pUSD")
        for f in o.fills:
            typer.echo(f"  fill {f.trade_id}: {f.side} {f.size} @ {f.price} ({f.role}), fee {f.fee}, {f.status}")
    if acc.outcome == "refused":
        why = f"{o.error.message} [{o.error.error}]" if o.error else (o.history[-1].reason if o.history else "")
        raise CtlError(f"the venue refused order {o.order_id}: {why}", EXIT_REFUSED)
    if acc.outcome == "pending":
        raise CtlError(
            f"no final answer for order {o.order_id} yet (state {o.state}): it may still rest or fill; "
            f"see `polyoms order status {o.order_id}`",
            EXIT_PENDING,
        )


def _piped() -> bool:
    """stdout is not a terminal: watchers print one line per change instead of redrawing."""
    return not sys.stdout.isatty()


def _follow_parent(client: ControlClient, parent_id: str, poll_s: float = 0.5, max_s: float | None = None) -> None:
    """Progress of a parent order until it is done, or for `max_s` seconds (Ctrl-C stops watching, not the
    order): a live bar on a terminal, one line per change in a pipe."""
    deadline = None if max_s is None else time.monotonic() + max_s
    view = client.call("GET", f"/parents/{parent_id}", api.ParentView)
    if _piped():
        _parent_lines(client, view, poll_s, deadline)
        return
    target = max(to_micro(view.target, "target"), 1)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[filled]}/{task.fields[target]} shares  {task.fields[state]}"),
            TextColumn("{task.fields[children]} child orders"),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task(
                f"{view.algo} {view.side}",
                total=target,
                filled=view.filled,
                target=view.target,
                state=view.state,
                children=len(view.children),
            )
            while True:
                filled = to_micro(view.filled, "filled")
                progress.update(
                    task, completed=filled, filled=view.filled, state=view.state, children=len(view.children)
                )
                if view.done or (deadline is not None and time.monotonic() >= deadline):
                    break
                time.sleep(poll_s)
                view = client.call("GET", f"/parents/{parent_id}", api.ParentView)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching; the parent order runs on (`polyoms order status {parent_id}`)", err=True)
        return
    typer.echo(f"parent {parent_id}: {view.state}, filled {view.filled}/{view.target}")


def _parent_lines(client: ControlClient, view: api.ParentView, poll_s: float, deadline: float | None) -> None:
    last = None
    try:
        while True:
            line = f"parent {view.parent_id}: {view.state}, filled {view.filled}/{view.target}"
            if not view.done:
                line += f", {len(view.children)} child order(s)"
            if line != last:
                typer.echo(line)
                last = line
            if view.done or (deadline is not None and time.monotonic() >= deadline):
                return
            time.sleep(poll_s)
            view = client.call("GET", f"/parents/{view.parent_id}", api.ParentView)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching; the parent order runs on (`polyoms order status {view.parent_id}`)", err=True)


def _follow_order(client: ControlClient, view: api.OrderView, poll_s: float = 0.5) -> None:
    """One line per change of an order (state, fills, cancel pending) until it is done (Ctrl-C stops watching)."""
    path = f"/orders/{urllib.parse.quote(view.order_id, safe='')}"
    last = None
    try:
        while True:
            line = f"order {view.order_id}: {view.state}" + (" (cancel pending)" if view.pending_cancel else "")
            line += f", filled {view.filled}/{view.size}, {len(view.fills)} fill(s), fees {view.fees}"
            if line != last:
                typer.echo(line)
                last = line
            if view.done:
                return
            time.sleep(poll_s)
            view = client.call("GET", path, api.OrderView)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching order {view.order_id}", err=True)


def order_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only orders still working.")] = False,
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the daemon's orders (and parent orders)."""

    def go() -> None:
        client = ControlClient.locate(state_dir, url, token)
        orders = client.call("GET", "/orders", api.OrderList, params={"open": "1"} if open_only else None)
        parents = client.call("GET", "/parents", api.ParentList)
        if as_json:
            _print_json({"orders": orders.orders, "parents": parents.parents})
            return
        console = _console()
        if not orders.orders and not parents.parents:
            console.print("no orders", highlight=False)
            return
        if orders.orders:
            t = Table("market", "outcome", "state", "side", "type", "price", "size", "filled", "created", "actor")
            _id_column(t, 0, "order id", [o.order_id for o in orders.orders])
            for o in orders.orders:
                state = o.state + (" (cancel pending)" if o.pending_cancel else "")
                t.add_row(
                    o.order_id,
                    escape(_short(o.question or o.market or "-", 40)),
                    escape(o.outcome or "-"),
                    state,
                    o.side,
                    o.order_type,
                    o.price,
                    o.size,
                    o.filled,
                    _ts(o.created_ms),
                    escape(o.actor),
                )
            console.print(t, highlight=False)
        if parents.parents:
            t = Table("parent id", "algo", "state", "side", "target", "filled", "children")
            for p in parents.parents:
                t.add_row(p.parent_id, p.algo, p.state, p.side, p.target, p.filled, str(len(p.children)))
            console.print(t, highlight=False)

    _run(go)


def order_status(
    order_id: Annotated[str, typer.Argument(help="Order id (0x…) or parent id, or a unique prefix of one.")],
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Follow the order or parent order until it is done (a line per change in a pipe)."
        ),
    ] = False,
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One order with its audit trail and fills (or a parent order with its children)."""

    def go() -> None:
        client = ControlClient.locate(state_dir, url, token)
        raw = client.raw("GET", f"/orders/{urllib.parse.quote(order_id.strip(), safe='')}")
        data = msgspec.json.decode(raw)
        if isinstance(data, dict) and "parent_id" in data:
            parent = msgspec.convert(data, api.ParentView)
            if as_json:
                _print_json(parent)
            elif watch and not parent.done:
                _follow_parent(client, parent.parent_id)
            else:
                _print_parent(parent)
            return
        view = msgspec.convert(data, api.OrderView)
        if as_json:
            _print_json(view)
        elif watch and not view.done:
            _follow_order(client, view)
        else:
            _print_order(view)

    _run(go)


def _print_parent(p: api.ParentView) -> None:
    console = _console()
    t = Table(show_header=False, box=None)
    for k, v in (
        ("parent", p.parent_id),
        ("algo", p.algo),
        ("state", p.state),
        ("side", p.side),
        ("token", p.token_id),
        ("target", p.target),
        ("filled", p.filled),
        *p.detail.items(),
    ):
        t.add_row(f"[bold]{k}[/]", escape(str(v)))
    console.print(t, highlight=False)
    if p.children:
        console.print("children:\n  " + "\n  ".join(p.children), highlight=False)


def _print_order(o: api.OrderView) -> None:
    console = _console()
    t = Table(show_header=False, box=None)
    rows = [
        ("order", o.order_id),
        ("state", o.state + (" (cancel pending)" if o.pending_cancel else "")),
        ("side", o.side),
        ("type", o.order_type + (" postOnly" if o.post_only else "")),
        ("price", o.price),
        ("size", o.size),
        ("filled", o.filled),
        ("token", o.token_id),
        ("market", o.market or "-"),
        ("question", o.question or "-"),
        ("outcome", o.outcome or "-"),
        ("actor", o.actor),
    ]
    if o.error is not None:
        rows.append(("error", f"{o.error.message} [{o.error.error}]"))
    for k, v in rows:
        t.add_row(f"[bold]{k}[/]", escape(v))
    console.print(t, highlight=False)
    audit = Table("time (UTC)", "seq", "from", "to", "reason", "actor", title="audit trail")
    for h in o.history:
        audit.add_row(_ts(h.ts_ms), str(h.seq), h.from_state or "-", h.to_state, escape(h.reason), escape(h.actor))
    console.print(audit, highlight=False)
    if o.fills:
        fills = Table("trade", "side", "role", "price", "size", "fee", "status", "tier", title="fills")
        for f in o.fills:
            fills.add_row(f.trade_id, f.side, f.role, f.price, f.size, f.fee, f.status, f.tier)
        console.print(fills, highlight=False)


def order_cancel(
    order_id: Annotated[str | None, typer.Argument(help="Order id (0x…) or parent id.")] = None,
    cancel_all: Annotated[bool, typer.Option("--all", help="Cancel every open order.")] = False,
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel one order (or parent order), or every open order with --all."""

    def go() -> None:
        if (order_id is None) == (not cancel_all):
            raise CtlError("give an order id, or --all (not both)", EXIT_INPUT)
        client = ControlClient.locate(state_dir, url, token)
        if cancel_all:
            res = client.call("DELETE", "/orders", api.CancelResult)
        else:
            assert order_id is not None
            res = client.call("DELETE", f"/orders/{urllib.parse.quote(order_id.strip(), safe='')}", api.CancelResult)
        if as_json:
            _print_json(res)
            return
        for oid in res.requested:
            typer.echo(f"cancel requested: {oid}")
        if res.note:
            typer.echo(res.note)

    _run(go)


# --- positions, metrics, status, stop, markets -----------------------------------------------------------


def positions(
    state_dir: StateDirOpt = None, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """pUSD (confirmed, reserved, provisional, available) and positions from the daemon's ledger, marked to
    market: at the mid (value, unrealized PnL) and at the bid (what selling now would fetch)."""

    def go() -> None:
        p = ControlClient.locate(state_dir, url, token).call("GET", "/positions", api.PositionsView)
        if as_json:
            _print_json(p)
            return
        console = _console()
        console.print(
            f"wallet {p.wallet}\npUSD: cash {p.cash}  reserved {p.reserved}  provisional out {p.provisional_out}  "
            f"provisional in {p.provisional_in}  [bold]available {p.available}[/]\n"
            f"PnL: realized {p.realized}  unrealized {p.unrealized} (at the mid)  equity {p.equity}  "
            f"liquidation value {p.liquidation_value} (at the bid)",
            highlight=False,
        )
        if not p.positions:
            console.print("no positions", highlight=False)
            return
        t = Table(
            "outcome",
            "confirmed",
            "prov. in",
            "prov. out",
            "reserved",
            "sellable",
            "avg price",
            "mid",
            "value",
            "unrealized",
            "liq. price",
            "liq. value",
            "realized",
            "fees",
        )
        _id_column(t, 0, "token", [r.token_id for r in p.positions])
        for r in p.positions:
            t.add_row(
                r.token_id,
                escape(r.outcome),
                r.confirmed,
                r.provisional_in,
                r.provisional_out,
                r.reserved,
                r.sellable,
                r.avg_price or "-",
                r.mark or "-",
                r.market_value or "-",
                r.unrealized or "-",
                r.liquidation_price or "-",
                r.liquidation_value or "-",
                r.realized,
                r.fees,
            )
        console.print(t, highlight=False)
        if p.unmarked:
            console.print(
                f"no two-sided book for {len(p.unmarked)} position(s): counted at cost in equity", highlight=False
            )

    _run(go)


def metrics(state_dir: StateDirOpt = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """The daemon's metrics (Prometheus text format)."""

    def go() -> None:
        typer.echo(ControlClient.locate(state_dir, url, token).raw("GET", "/metrics").decode(), nl=False)

    _run(go)


def status(state_dir: StateDirOpt = None, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Is the daemon up; its venue, wallet and whether it admits new orders."""

    def go() -> None:
        s = ControlClient.locate(state_dir, url, token).call("GET", "/status", api.StatusView)
        if as_json:
            _print_json(s)
            return
        admission = "[green]open[/]" if s.admission_open else "[red]closed[/]: " + escape("; ".join(s.admission_errors))
        _console().print(
            f"venue {s.venue} ({s.venue_url})\nwallet {s.wallet} (signer {s.signer})\nadmission {admission}\n"
            f"orders {s.orders} ({s.open_orders} open), user stream {s.user_stream}, pid {s.pid}",
            highlight=False,
        )

    _run(go)


def stop(
    emergency: Annotated[
        bool, typer.Option("--emergency", help="Close admission and cancel every order; the daemon keeps running.")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit trail.")] = "operator",
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Shut the daemon down gracefully, or with --emergency: cancel everything and close admission."""

    def go() -> None:
        res = ControlClient.locate(state_dir, url, token).call(
            "POST", "/stop", api.StopResult, body=api.StopRequest(emergency=emergency, reason=reason)
        )
        if as_json:
            _print_json(res)
        elif emergency:
            typer.echo(
                f"EMERGENCY STOP: admission {res.admission}; cancel requested for {res.cancel_requested} open "
                f"order(s), {res.parents_cancelled} parent order(s) stopped. {res.note}"
            )
        else:
            typer.echo(f"daemon {res.admission}: {res.note}")

    _run(go)


def resume(state_dir: StateDirOpt = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Reopen admission after `stop --emergency`."""

    def go() -> None:
        res = ControlClient.locate(state_dir, url, token).call("POST", "/resume", api.StopResult, body={})
        typer.echo(f"admission {res.admission}: {res.note}")
        if res.admission != "open":
            raise CtlError("admission is still closed", EXIT_REFUSED)

    _run(go)


@markets_app.command("search")
def markets_search(
    text: Annotated[str, typer.Argument(help="Words to look for in the question, slug or outcomes.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many markets.")] = 20,
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search markets (the local exchange's catalog, or Gamma for Polymarket) and show their token ids."""

    def go() -> None:
        if not text.strip():
            raise CtlError("give some words to search for", EXIT_INPUT)
        res = ControlClient.locate(state_dir, url, token).call(
            "GET", "/markets", api.MarketList, params={"q": text, "limit": str(limit)}
        )
        if as_json:
            _print_json(res)
            return
        console = _console()
        if not res.markets:
            console.print(f"no market matches {escape(text)!r}", highlight=False)
            return
        t = Table("question", "outcome", "tick", "min size", "bid", "ask", "open")
        _id_column(t, 2, "token id", [tok for m in res.markets for tok in m.token_ids])
        for m in res.markets:
            for i, (outcome, tok) in enumerate(zip(m.outcomes, m.token_ids, strict=False)):
                # Every token's own book (the NO side too); an older daemon sends only the first's.
                bid = m.bids[i] if i < len(m.bids) else (m.best_bid if i == 0 else None)
                ask = m.asks[i] if i < len(m.asks) else (m.best_ask if i == 0 else None)
                t.add_row(
                    escape(m.question or m.slug) if i == 0 else "",
                    escape(outcome),
                    tok,
                    m.tick or "-",
                    m.min_order_size or "-",
                    bid or "-",
                    ask or "-",
                    ("yes" if m.accepting_orders else "no") if i == 0 else "",
                )
        console.print(t, highlight=False)

    _run(go)


# --- registration -----------------------------------------------------------------------------------------

order_cli.app.command("add")(order_add)
order_cli.app.command("list")(order_list)
order_cli.app.command("status")(order_status)
order_cli.app.command("cancel")(order_cancel)


def register(app: typer.Typer) -> None:
    """Attach the daemon-control commands to the top-level app (the `order` ones attach on import)."""
    app.command("positions")(positions)
    app.command("metrics")(metrics)
    app.command("status")(status)
    app.command("stop")(stop)
    app.command("resume")(resume)
    app.add_typer(markets_app, name="markets")
