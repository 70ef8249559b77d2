"""Positions, cost basis and PnL of one wallet, from the exchange's trades and ledger (pure, exact).

What the venue's Data API reports per outcome token (§4.14): size, average cost, realized and unrealized
PnL. Everything here is integer micro-units: prices in micro-pUSD per share, sizes in micro-shares, cash
in micro-pUSD. Rendering to the venue's JSON numbers happens in `api/data_api.py`.

Rules:
* Every leg of a trade counts for its own party, as that party saw it (`fills_of`): the taker's view at
  the top of the trade, each maker's own token, side and price in its `MakerFill` (MINT/MERGE fills are
  buys/sells of the maker's token like any other). FAILED trades were reversed and do not count; trades
  still settling do, since the ledger's balances already hold their proceeds.
* Average cost: a BUY adds its cash (fee included, see `FEES_IN_COST_BASIS`) to the position's cost; a
  SELL or a redemption takes out the sold shares' share of the cost (floored, so the remainder stays in
  the cost and nothing is lost) and realizes the difference with what it brought in.
* Shares that no trade explains (funded by the exchange's administration, the background traders' start
  inventory) are an opening lot, before the first trade, priced at `OPENING_PRICE`: what the ledger
  holds beyond what the trades leave.
* A resolved market's shares were all redeemed at resolution (the exchange burns them and pays the
  winners): the winner at 1 pUSD, the loser at 0. The payout tells how many winning shares a wallet
  held; a losing token's start inventory is only known as far as its sales reveal it.
* The price of an open position: the midpoint, else the last trade, else 0.5 (`FALLBACK_PRICE`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from polyoms.core.enums import Side
from polyoms.core.errors import NotFoundError
from polyoms.core.units import MICRO, Micro
from polyoms.exchange.engine import Exchange
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.trades import TRADE_FAILED, Trade

# UNCONFIRMED: whether the venue's avgPrice / PnL include the taker fee is not documented. A fee is
# real money spent on the position, so a BUY's fee is part of its cost and a SELL's reduces proceeds.
FEES_IN_COST_BASIS: Final = True
# UNCONFIRMED (ours, no venue counterpart): the price of shares no trade explains. A full set costs
# 1 pUSD, so each of its two shares is carried at half of it.
OPENING_PRICE: Final = MICRO // 2
# UNCONFIRMED: the venue's curPrice when a book has no midpoint and the token never traded.
FALLBACK_PRICE: Final = MICRO // 2

_BUY: Final = Side.BUY


@dataclass(frozen=True, slots=True)
class Fill:
    """One party's side of one trade."""

    address: str
    """The funder (maker) address, lower-case."""
    condition_id: str
    token_id: str
    outcome: str
    outcome_index: int
    side: Side
    size: Micro
    price: Micro
    pusd: Micro
    """What the shares cost or brought, fee not included."""
    fee: Micro
    time_ms: int
    trade_id: str
    transaction_hash: str
    is_taker: bool

    @property
    def cash(self) -> Micro:
        """pUSD that left (BUY) or reached (SELL) the wallet for this fill."""
        fee = self.fee if FEES_IN_COST_BASIS else 0
        return self.pusd + fee if self.side is _BUY else self.pusd - fee


def fills_of(trade: Trade) -> list[Fill]:
    """The taker's fill and every maker's, or none for a FAILED (reversed) trade."""
    if trade.status == TRADE_FAILED:
        return []
    t = trade
    out = [
        Fill(
            t.maker_address.lower(), t.market, t.asset_id, t.outcome, t.outcome_index, t.side, t.size,
            t.price, t.pusd, t.fee, t.match_time_ms, t.trade_id, t.transaction_hash, True,
        )
    ]  # fmt: skip
    for m in t.maker_orders:
        out.append(
            Fill(
                m.maker_address.lower(), t.market, m.asset_id, m.outcome, m.outcome_index, m.side,
                m.matched_amount, m.price, m.pusd, m.fee, t.match_time_ms, t.trade_id, t.transaction_hash, False,
            )
        )  # fmt: skip
    return out


def wallet_fills(trades: Iterable[Trade], address: str) -> list[Fill]:
    """`address`'s own fills in `trades`, in match order."""
    addr = address.lower()
    return [f for t in trades for f in fills_of(t) if f.address == addr]


@dataclass(slots=True)
class PositionBook:
    """The running state of one wallet's position in one token."""

    token_id: str
    condition_id: str
    outcome: str = ""
    outcome_index: int = 0
    size: Micro = 0
    cost: Micro = 0
    """Cost of the shares held (micro-pUSD)."""
    bought: Micro = 0
    """Shares acquired in all (trades and opening lots)."""
    bought_cost: Micro = 0
    realized: Micro = 0
    opening: Micro = 0
    """Shares no trade explains (see the module doc)."""
    redeemed: Micro = 0
    """pUSD paid for these shares at resolution."""
    redeemed_shares: Micro = 0
    last_ms: int = 0

    def buy(self, size: Micro, cash: Micro) -> None:
        self.size += size
        self.cost += cash
        self.bought += size
        self.bought_cost += cash

    def open_lot(self, size: Micro) -> None:
        if size > 0:
            self.opening += size
            self.buy(size, size * OPENING_PRICE // MICRO)

    def sell(self, size: Micro, cash: Micro) -> None:
        if size > self.size:
            self.open_lot(size - self.size)
        removed = self.cost * size // self.size if self.size else 0
        self.size -= size
        self.cost -= removed
        self.realized += cash - removed

    @property
    def avg_price(self) -> Micro:
        """Average cost per share of what is held (of what was bought, once nothing is)."""
        if self.size:
            return self.cost * MICRO // self.size
        return self.bought_cost * MICRO // self.bought if self.bought else 0


@dataclass(frozen=True, slots=True)
class Position:
    """One token's position as the Data API reports it (micro-units)."""

    address: str
    market: MarketSpec
    token_id: str
    outcome_index: int
    size: Micro
    avg_price: Micro
    initial_value: Micro
    """What the shares held cost."""
    current_value: Micro
    cur_price: Micro
    total_bought: Micro
    realized_pnl: Micro
    bought_cost: Micro
    redeemable: bool
    mergeable: bool
    opening: Micro
    last_ms: int
    redeemed: Micro = 0
    """pUSD paid for these shares at resolution."""
    redeemed_shares: Micro = 0

    @property
    def cash_pnl(self) -> Micro:
        return self.current_value - self.initial_value

    @property
    def outcome(self) -> str:
        return self.market.outcomes[self.outcome_index]

    @property
    def opposite_token_id(self) -> str:
        return self.market.token_ids[1 - self.outcome_index]


PriceOf = Callable[[MarketSpec, str], Micro]
"""The current price of a token of an open market (micro)."""


@dataclass(frozen=True, slots=True)
class Redemption:
    """A resolved market, as far as one wallet's positions need it."""

    condition_id: str
    winning_token_id: str
    payout: Micro
    """pUSD this wallet was paid: one per winning share it held."""
    at_ms: int


def books_of(
    fills: Sequence[Fill],
    markets: Mapping[str, MarketSpec],
    balances: Mapping[str, Micro],
    redemptions: Mapping[str, Redemption],
) -> dict[str, PositionBook]:
    """Replay a wallet's fills into one book per token.

    `markets` maps every token id the wallet touched (or holds) to its market; `balances` holds the
    ledger's share balances per token; `redemptions` the resolved markets by condition id (lower-case).
    """
    books: dict[str, PositionBook] = {}

    def book(token: str) -> PositionBook:
        b = books.get(token)
        if b is None:
            spec = markets[token]
            idx = 0 if token == spec.yes_token_id else 1
            b = books[token] = PositionBook(token, spec.condition_id, spec.outcomes[idx], idx)
        return b

    ordered = sorted(fills, key=lambda f: f.time_ms)  # stable: match order within a millisecond
    net: dict[str, Micro] = {}
    low: dict[str, Micro] = {}
    for f in ordered:
        n = net[f.token_id] = net.get(f.token_id, 0) + (f.size if f.side is _BUY else -f.size)
        low[f.token_id] = min(low.get(f.token_id, 0), n)
    paid = {r.winning_token_id for r in redemptions.values() if r.payout}
    for token in sorted({*net, *paid, *(t for t, held in balances.items() if held)}):
        if token not in markets:
            continue
        b = book(token)
        # The start inventory goes first, where the administration funds it: what the end state (the
        # ledger, or the payout of a resolved market) holds beyond what the trades leave; for a losing
        # token, whose end state is burned, the least that keeps every sale covered.
        red = redemptions.get(markets[token].condition_id.lower())
        if red is None:
            end: Micro | None = balances.get(token, 0)
        else:
            end = red.payout if token == red.winning_token_id else None
        b.open_lot(-low.get(token, 0) if end is None else end - net.get(token, 0))
    for f in ordered:
        b = book(f.token_id)
        if f.side is _BUY:
            b.buy(f.size, f.cash)
        else:
            b.sell(f.size, f.cash)
        b.last_ms = f.time_ms
    for token, b in books.items():
        red = redemptions.get(markets[token].condition_id.lower())
        if red is None:
            _reconcile(b, balances.get(token, 0))
            continue
        won = token == red.winning_token_id
        cash = b.size if won else 0
        b.redeemed_shares = b.size
        if b.size:
            b.sell(b.size, cash)
        b.redeemed = cash
        b.last_ms = max(b.last_ms, red.at_ms)
    return books


def _reconcile(b: PositionBook, held: Micro) -> None:
    """Make the book hold what the ledger does: more is an opening lot; less cannot come from trades
    (they are all counted), so the excess is written off at cost, realizing nothing."""
    if held > b.size:
        b.open_lot(held - b.size)
    elif held < b.size:
        removed = b.cost * (b.size - held) // b.size
        b.size, b.cost = held, b.cost - removed


def current_price(spec: MarketSpec, token_id: str, midpoint: Micro | None, last: Micro | None) -> Micro:
    """1 or 0 once resolved, else the midpoint, the last trade or `FALLBACK_PRICE`."""
    if spec.resolved:
        return MICRO if token_id == spec.winning_token_id else 0
    if midpoint is not None:
        return midpoint
    return last if last is not None else FALLBACK_PRICE


def positions_of(
    address: str, books: Mapping[str, PositionBook], markets: Mapping[str, MarketSpec], price_of: PriceOf
) -> list[Position]:
    """Every token the wallet ever held, open (size > 0) or closed, as `Position`s."""
    held = {t for t, b in books.items() if b.size > 0}
    out: list[Position] = []
    for token, b in books.items():
        spec = markets[token]
        price = price_of(spec, token)
        other = spec.token_ids[1 - b.outcome_index]
        out.append(
            Position(
                address=address.lower(),
                market=spec,
                token_id=token,
                outcome_index=b.outcome_index,
                size=b.size,
                avg_price=b.avg_price,
                initial_value=b.cost,
                current_value=b.size * price // MICRO,
                cur_price=price,
                total_bought=b.bought,
                realized_pnl=b.realized,
                bought_cost=b.bought_cost,
                redeemable=spec.resolved and b.size > 0,
                mergeable=not spec.resolved and b.size > 0 and other in held,
                opening=b.opening,
                last_ms=b.last_ms,
                redeemed=b.redeemed,
                redeemed_shares=b.redeemed_shares,
            )
        )
    return out


def portfolio_value(positions: Iterable[Position]) -> Micro:
    """What the open positions are worth at their current prices."""
    return sum(p.current_value for p in positions)


# --- on an exchange (public queries only) ----------------------------------------------------------


def exchange_price(exchange: Exchange) -> PriceOf:
    """`current_price` on `exchange`'s books."""

    def price_of(spec: MarketSpec, token_id: str) -> Micro:
        if spec.resolved:
            return current_price(spec, token_id, None, None)
        last = exchange.last_trade(token_id)
        return current_price(spec, token_id, exchange.midpoint(token_id), last[0] if last else None)

    return price_of


def token_markets(exchange: Exchange) -> dict[str, MarketSpec]:
    """Token id -> market, for every market the exchange lists."""
    return {t: m for m in exchange.markets() for t in m.token_ids}


def redemptions_of(exchange: Exchange, address: str, markets: Iterable[MarketSpec]) -> dict[str, Redemption]:
    """The resolved markets among `markets`, with what `address` was paid (condition id lower-case)."""
    addr = address.lower()
    out: dict[str, Redemption] = {}
    for spec in markets:
        if not spec.resolved:
            continue
        try:
            res = exchange.resolution(spec.condition_id)
        except NotFoundError:
            continue
        if res is not None:
            payout = res.payouts.get(addr, 0)
            out[spec.condition_id.lower()] = Redemption(
                spec.condition_id, res.winning_token_id, payout, res.resolved_at_ms
            )
    return out


def wallet_positions(
    exchange: Exchange, address: str, markets: Mapping[str, MarketSpec] | None = None
) -> list[Position]:
    """`address`'s positions on `exchange`, open and closed, from its trades, ledger and resolutions."""
    tokens = token_markets(exchange) if markets is None else markets
    fills = [f for f in wallet_fills(exchange.trades(maker_address=address), address) if f.token_id in tokens]
    balances = {t: b.balance for t, b in exchange.balances(address).tokens.items() if t in tokens}
    # Every resolved market: a wallet may have been paid for shares it never traded.
    redemptions = redemptions_of(exchange, address, {m.condition_id.lower(): m for m in tokens.values()}.values())
    books = books_of(fills, tokens, balances, redemptions)
    return positions_of(address, books, tokens, exchange_price(exchange))
