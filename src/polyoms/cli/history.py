"""`polyoms history` (fills with fees and tiers, PnL per market) and `polyoms pnl` (the equity curve),
from a running daemon's control API (GET /v1/history, GET /v1/pnl). Both print a table, or export
`--format csv` / `--format json` on stdout. Amounts are exact decimal strings, as the daemon sends them."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated

import msgspec
import typer
from rich.markup import escape
from rich.table import Table

from polyoms.cli.ctl import (
    EXIT_INPUT,
    ControlClient,
    CtlError,
    StateDirOpt,
    TokenOpt,
    UrlOpt,
    _console,
    _id_column,
    _run,
    _ts,
)
from polyoms.ops import schema as api

FORMATS = ("table", "csv", "json")
FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json (csv and json: for export).")]


def _check_format(fmt: str) -> str:
    f = fmt.strip().lower()
    if f not in FORMATS:
        raise CtlError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", EXIT_INPUT)
    return f


def to_csv(rows: list[msgspec.Struct], typ: type[msgspec.Struct]) -> str:
    """One header line (the view's field names) and one line per row; None is an empty cell."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    fields = typ.__struct_fields__
    w.writerow(fields)
    for r in rows:
        w.writerow(["" if (v := getattr(r, name)) is None else v for name in fields])
    return out.getvalue()


def history(
    market: Annotated[str | None, typer.Option("--market", help="Only this market (condition id).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, max=100_000, help="Only the last N fills.")] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Export the per-market PnL rows instead of the fills (csv).")
    ] = False,
    fmt: FormatOpt = "table",
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Fills (fees, tiers PROVISIONAL / CONFIRMED / VOIDED) and realized PnL per market, by average cost over
    confirmed fills."""

    def go() -> None:
        f = _check_format(fmt)
        params = {k: v for k, v in (("market", market), ("limit", None if limit is None else str(limit))) if v}
        h = ControlClient.locate(state_dir, url, token).call("GET", "/history", api.HistoryView, params=params)
        if f == "json":
            typer.echo(json.dumps(msgspec.to_builtins(h), indent=2))
            return
        if f == "csv":
            if summary:
                typer.echo(to_csv(list(h.markets), api.MarketPnl), nl=False)
            else:
                typer.echo(to_csv(list(h.fills), api.HistoryFill), nl=False)
            return
        console = _console()
        if not h.fills and not h.markets:
            console.print("no fills", highlight=False)
            return
        if h.fills:
            t = Table("time (UTC)", "outcome", "side", "role", "price", "size", "fee", "pUSD", "tier", title="fills")
            _id_column(t, 1, "trade", [x.trade_id for x in h.fills])
            for x in h.fills:
                t.add_row(
                    _ts(x.time_ms),
                    x.trade_id,
                    escape(x.outcome),
                    x.side,
                    x.role,
                    x.price,
                    x.size,
                    x.fee,
                    x.cash_delta,
                    x.tier,
                )
            console.print(t, highlight=False)
            if h.truncated:
                console.print(f"({h.truncated} older fills not shown: --limit)", highlight=False)
        m = Table(
            "fills", "bought", "sold", "paid", "received", "fees", "realized", "held", "unrealized", title="by market"
        )
        _id_column(m, 0, "market", [x.market for x in h.markets])
        for mp in h.markets:
            pending = f" (+{mp.provisional} provisional)" if mp.provisional else ""
            m.add_row(
                mp.market,
                f"{mp.fills}{pending}",
                mp.bought,
                mp.sold,
                mp.buy_cash,
                mp.sell_cash,
                mp.fees,
                mp.realized,
                mp.position,
                mp.unrealized or "-",
            )
        console.print(m, highlight=False)
        console.print(f"realized {h.realized} pUSD, fees {h.fees} pUSD (confirmed fills)", highlight=False)

    _run(go)


def pnl(
    points: Annotated[int, typer.Option("--points", min=2, max=100_000, help="At most this many points.")] = 200,
    fmt: FormatOpt = "table",
    state_dir: StateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """The equity curve: confirmed pUSD + positions marked to market, over time, replayed from the journal."""

    def go() -> None:
        f = _check_format(fmt)
        v = ControlClient.locate(state_dir, url, token).call("GET", "/pnl", api.PnlView, params={"points": str(points)})
        if f == "json":
            typer.echo(json.dumps(msgspec.to_builtins(v), indent=2))
            return
        if f == "csv":
            typer.echo(to_csv(list(v.points), api.EquityPointView), nl=False)
            return
        console = _console()
        t = Table("time (UTC)", "cause", "cash", "positions", "equity", "realized", "unrealized")
        for x in v.points:
            t.add_row(_ts(x.ts_ms), x.cause, x.cash, x.value, x.equity, x.realized, x.unrealized)
        console.print(t, highlight=False)
        thinned = f" ({v.thinned} points thinned out)" if v.thinned else ""
        console.print(
            f"equity {v.start_equity} -> {v.end_equity} pUSD (change {v.change}){thinned}\n{escape(v.method)}",
            highlight=False,
        )

    _run(go)


def register(app: typer.Typer) -> None:
    app.command("history")(history)
    app.command("pnl")(pnl)
