"""`polyoms order ...`: orders from the command line."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from polyoms.algos.catalog import COMMON_PARAMS, orderable
from polyoms.cli.params import echo_params, params_json
from polyoms.core.enums import OrderType
from polyoms.core.errors import InputError, InvalidKeyError, PolyomsError
from polyoms.core.units import fmt_micro
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder
from polyoms.polymarket.protocol.wire import encode_json, order_to_wire

app = typer.Typer(help="Build, sign and inspect orders.", no_args_is_help=True)
KEY_ENV = "POLYOMS_PRIVATE_KEY"


def _fail(message: str, code: int = 2) -> typer.Exit:
    # The message may echo user input: escape it so "[...]" is printed, not parsed as markup.
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


@app.command("algos")
def algos(as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False) -> None:
    """The execution algorithms `order add --algo NAME` starts, with their parameters (`--param KEY=VALUE`)."""
    if as_json:
        listed = [
            {
                "name": e.name,
                "aliases": list(e.aliases),
                "summary": e.summary,
                "price": e.item.price_help,
                "params": params_json(e.item.params),
            }
            for e in orderable()
        ]
        typer.echo(json.dumps({"algos": listed, "every_algo": params_json(COMMON_PARAMS)}, indent=2))
        return
    for e in orderable():
        also = f" (also {', '.join(e.aliases)})" if e.aliases else ""
        typer.echo(f"{e.name}{also}: {e.summary}")
        typer.echo(f"  --price  {e.item.price_help}")
        echo_params(e.item.params)
    typer.echo("every algo")
    echo_params(COMMON_PARAMS)


def load_signer() -> Signer:
    raw = os.environ.get(KEY_ENV)
    if not raw:
        raise InvalidKeyError(f"set {KEY_ENV} to the signing key (hex); it is read from the environment only")
    return Signer(raw)


@app.command("sign")
def sign(
    token_id: Annotated[str, typer.Option("--token-id", help="Outcome token id (decimal).")],
    side: Annotated[str, typer.Option("--side", help="BUY or SELL.")],
    price: Annotated[str, typer.Option("--price", help="Limit price, or worst price for a market order.")],
    tick_size: Annotated[
        str, typer.Option("--tick-size", help="Market tick size: 0.1 0.01 0.005 0.0025 0.001 0.0001.")
    ],
    size: Annotated[str | None, typer.Option("--size", help="Shares (limit orders, market SELL).")] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", help="pUSD to spend: selects a market BUY (FOK/FAK).")
    ] = None,
    order_type: Annotated[str, typer.Option("--order-type", help="GTC, GTD, FOK or FAK.")] = "GTC",
    neg_risk: Annotated[bool, typer.Option("--neg-risk", help="Sign for the neg-risk exchange.")] = False,
    signature_type: Annotated[int, typer.Option("--signature-type", help="0 EOA, 1 proxy, 2 Safe, 3 POLY_1271.")] = 0,
    funder: Annotated[str | None, typer.Option("--funder", help="Wallet holding the funds (types 1-3).")] = None,
    expiration: Annotated[int, typer.Option("--expiration", help="GTD expiry, unix seconds.")] = 0,
    post_only: Annotated[bool, typer.Option("--post-only", help="Reject instead of taking liquidity.")] = False,
    min_size: Annotated[str | None, typer.Option("--min-size", help="Market minimum size, to check.")] = None,
    chain_id: Annotated[int, typer.Option("--chain-id")] = 137,
    salt: Annotated[int | None, typer.Option("--salt", help="Override the random salt.")] = None,
    timestamp: Annotated[int | None, typer.Option("--timestamp", help="Override the timestamp (ms).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {order, orderID} as JSON.")] = False,
) -> None:
    """Build and sign one order offline and print it (nothing is sent)."""
    try:
        otype = OrderType.parse(order_type)
        if amount is not None and size is not None:
            raise InputError("pass --size (shares) or --amount (pUSD, market BUY), not both")
        if amount is None and size is None:
            raise InputError("pass --size (shares), or --amount (pUSD) for a market BUY")
        builder = OrderBuilder(load_signer(), chain_id=chain_id, signature_type=signature_type, funder=funder)
        if amount is not None:
            if side.strip().upper() != "BUY":
                raise InputError("--amount (pUSD) is for market BUY orders; a market SELL takes --size (shares)")
            if otype is OrderType.GTC:
                otype = OrderType.FOK
            order = builder.market(
                token_id,
                side,
                amount,
                price,
                tick=tick_size,
                neg_risk=neg_risk,
                order_type=otype,
                salt=salt,
                timestamp_ms=timestamp,
            )
        elif otype.is_marketable_only and side.strip().upper() == "SELL":
            assert size is not None
            order = builder.market(
                token_id,
                side,
                size,
                price,
                tick=tick_size,
                neg_risk=neg_risk,
                order_type=otype,
                salt=salt,
                timestamp_ms=timestamp,
            )
        else:
            assert size is not None
            order = builder.limit(
                token_id,
                side,
                price,
                size,
                tick=tick_size,
                neg_risk=neg_risk,
                order_type=otype,
                expiration=expiration,
                post_only=post_only,
                min_size=min_size,
                salt=salt,
                timestamp_ms=timestamp,
            )
    except PolyomsError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(encode_json({"order": order_to_wire(order), "orderID": order.order_id}).decode())
        return
    _print_order(order)


def _print_order(order: SignedOrder) -> None:
    shares, price = order.size_and_price
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        ("orderID", order.order_id),
        ("side", order.side.name),
        ("order type", order.order_type.value + (" postOnly" if order.post_only else "")),
        ("price", fmt_micro(price)),
        ("shares", fmt_micro(shares)),
        ("makerAmount", f"{order.maker_amount} ({fmt_micro(order.maker_amount)})"),
        ("takerAmount", f"{order.taker_amount} ({fmt_micro(order.taker_amount)})"),
        ("tokenId", str(order.token_id)),
        ("maker", order.maker),
        ("signer", order.signer),
        ("signatureType", f"{int(order.signature_type)} ({order.signature_type.name})"),
        ("exchange", f"{order.exchange}{' (neg-risk)' if order.neg_risk else ''}"),
        ("chainId", str(order.chain_id)),
        ("salt", str(order.salt)),
        ("timestamp", str(order.timestamp_ms)),
        ("expiration", str(order.expiration)),
        ("signature", order.signature),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    console = Console()
    if console.width < 100:
        # Never fold the order id or an address across lines (80 columns is rich's default when
        # stdout is not a terminal): ids must stay copyable; only the signature may fold.
        console = Console(width=100)
    console.print(table, highlight=False)
