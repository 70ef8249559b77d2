"""The local exchange's state on disk, so that an embedded exchange survives a restart.

    state = capture(service)                        # on the exchange's loop: a consistent copy
    save(path, state)                               # atomic: tmp + fsync + rename, mode 0600
    state = load(path)                              # None if there is none; SnapshotError if unusable
    service = build_service(..., snapshot=state)    # exchange/api/runner: the same exchange again

A snapshot (`ServiceState`, which says what it holds and what starts afresh) is everything the
exchange accepted and where it had got to; what is configuration or a live connection is given again
at start. Format: JSON through typed msgspec structs with a version number; never pickle. A file that
is not valid JSON, does not match the schema, carries another version or does not pass the exchange's
own `audit` raises `SnapshotError` and changes nothing.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

import msgspec

from polyoms.core.clock import Clock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import tick_size
from polyoms.exchange.accounts import Ledger
from polyoms.exchange.engine import Exchange, Resolution
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.incentives import IncentivesState
from polyoms.exchange.markets import MarketSpec, PriceTerms, RewardsConfig
from polyoms.exchange.orders import Order
from polyoms.exchange.settlement import SettlementConfig
from polyoms.exchange.trades import TRADE_CONFIRMED, TRADE_FAILED, MakerFill, MatchType, Trade
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S

if TYPE_CHECKING:
    from polyoms.exchange.api.service import SimService
    from polyoms.exchange.history import HistoryArchive

VERSION: Final = 1
TRADE_ID_EPOCH: Final = 1 << 48
"""Trade ids are a seeded prefix and a counter (`trades.TradeIds`); a restore moves the counter to the
next multiple of this, past any id a crashed run may have handed out after its snapshot."""


class SnapshotError(PolyomsError):
    """A saved exchange state cannot be used (corrupt, another version, inconsistent)."""


# --- the schema ----------------------------------------------------------------------------------


class RewardsState(msgspec.Struct, forbid_unknown_fields=True):
    max_spread: int
    min_size: int
    daily_rate: int
    in_game_multiplier: str


class TermsState(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    kind: str
    window: str
    start_ms: int
    end_ms: int
    strike: str


class SpecState(msgspec.Struct, forbid_unknown_fields=True):
    condition_id: str
    question: str
    slug: str
    yes_token_id: str
    no_token_id: str
    tick: str
    min_size: int
    neg_risk: bool
    neg_risk_market_id: str
    fee_rate: str
    fee_exponent: int
    fee_taker_only: bool
    outcomes: tuple[str, str]
    accepting_orders: bool
    active: bool
    closed: bool
    end_date_iso: str
    description: str
    winning_token_id: str
    category: str = ""
    rewards: RewardsState | None = None
    taker_delay: bool = False
    terms: TermsState | None = None
    event_slug: str = ""
    created_ms: int = 0


class AccountState(msgspec.Struct, forbid_unknown_fields=True):
    address: str
    pusd: int
    pusd_reserved: int
    pusd_allowance: int
    pusd_pending: int
    tokens: dict[str, int]
    token_reserved: dict[str, int]
    token_allowance: dict[str, int]
    token_pending: dict[str, int]


class LedgerState(msgspec.Struct, forbid_unknown_fields=True):
    fee_collector: str
    accounts: list[AccountState]
    funded_pusd: int
    funded_tokens: dict[str, int]
    collateral_locked: dict[str, int]
    redeemed: dict[str, int]
    burned_tokens: dict[str, int]


class SavedOrder(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    order_id: str
    maker: str
    owner: str
    market: str
    asset_id: str
    outcome: str
    is_yes: bool
    side: Side
    order_type: OrderType
    price: int
    original_size: int
    maker_amount: int
    taker_amount: int
    expiration: int
    created_at: int
    timestamp_ms: int
    seq: int
    level: int
    remaining: int
    size_matched: int
    size_failed: int
    cancel_reason: str
    reserved: int
    resting: bool
    status: str
    associate_trades: list[str]


class MakerFillState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    order_id: str
    owner: str
    maker_address: str
    matched_amount: int
    price: int
    pusd: int
    asset_id: str
    outcome: str
    outcome_index: int
    side: Side
    match_type: MatchType
    fee: int
    fee_rate_bps: int


class TradeState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    trade_id: str
    taker_order_id: str
    market: str
    asset_id: str
    outcome: str
    outcome_index: int
    side: Side
    price: int
    size: int
    pusd: int
    fee: int
    fee_rate_bps: int
    owner: str
    maker_address: str
    match_time_ms: int
    maker_orders: list[MakerFillState]
    status: str
    last_update_ms: int
    bucket_index: int
    transaction_hash: str
    err_msg: str


class BookState(msgspec.Struct, forbid_unknown_fields=True):
    condition_id: str
    bids: list[str]
    """Resting YES-space bids, level by level from the lowest, each level in time priority."""
    asks: list[str]


class ResolutionState(msgspec.Struct, forbid_unknown_fields=True):
    condition_id: str
    winning_token_id: str
    winning_outcome: str
    resolved_at_ms: int
    canceled: list[str]
    payouts: dict[str, int]
    burned: dict[str, int]


class RandomState(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    internal: list[int]
    gauss_next: float | None


class DueStep(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    due_ms: int
    n: int
    trade_id: str
    fate: int


class SettlementState(msgspec.Struct, forbid_unknown_fields=True):
    cursor: int
    handed: int
    due: list[DueStep]
    n: int
    rng: RandomState


class LastTrade(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    token_id: str
    price: int
    side: Side


class ExchangeState(msgspec.Struct, forbid_unknown_fields=True):
    fee_collector: str
    markets: list[SpecState]
    ledger: LedgerState
    orders: list[SavedOrder]
    """Every order the exchange accepted, in sequence order."""
    books: list[BookState]
    trades: list[TradeState]
    """In match order."""
    last_trades: list[LastTrade]
    resolutions: list[ResolutionState]
    settlement: SettlementState
    order_seq: int
    trade_id_prefix: str
    trade_id_n: int
    incentives: IncentivesState | None = None
    """The rewards and rebates programme (exchange/incentives); None in snapshots from before it."""


class ApiKeyState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    address: str
    nonce: int


class ProxyWallet(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    owner: str
    signature_type: int
    wallet: str


class LifeState(msgspec.Struct, forbid_unknown_fields=True):
    """Where the background traders had got to (`MarketLife.resume` takes it)."""

    scenario: str
    seed: int
    start_ms: int
    ran_until_ms: int
    order_n: int
    market_slugs: list[str]
    """The markets the scenario was laid on, in order (its plans depend on the order)."""
    resolutions: dict[str, bool]
    stats: dict[str, int]
    reject_reasons: dict[str, int]


class ServiceState(msgspec.Struct, forbid_unknown_fields=True):
    """A snapshot of the local exchange and the service around it.

    What a snapshot holds: the markets as they are now (flags, ticks, resolutions, markets added while
    running), the ledger (balances, reservations, pending proceeds, allowances, the conservation totals),
    every order the exchange accepted (open ones with their place in their level's queue), every trade with
    its settlement status, the settlement pipeline (its cursor, later steps, random stream), trade-id and
    order-sequence counters, last trade prices, resolutions, the exchange's auth secret and the API keys
    created from it, the proxy wallets seen, the auto-funded addresses, and where the background traders
    (`MarketLife`) had got to.

    What starts afresh: the heartbeat chains (the exchange was down too, so nobody's dead-man switch ran;
    the first beat after a restart starts a new chain), orders answered `delayed` and not yet matched
    (dropped, as a delayed order that no longer fits is), fault switches and settlement delays (they are
    configuration, given again at start), WebSocket subscriptions, and the background traders' private
    random streams and estimates (they resume on the same seeded fair values and feed, see
    `MarketLife.resume`). Trade ids after a restore continue in a new range, so that they never repeat ids
    a crashed run handed out after its last snapshot.
    """

    version: int
    saved_at_ms: int
    chain_id: int
    seed: int
    auth_secret: bytes
    api_keys: list[ApiKeyState]
    wallets: list[ProxyWallet]
    auto_funded: list[str]
    exchange: ExchangeState
    life: LifeState | None = None
    # --- optional state of other parts ------------------------------------------------------------
    # Add a part's state here as `name: NameState | None = None` (a default keeps older snapshots of
    # this VERSION readable; `forbid_unknown_fields` makes a newer snapshot fail loudly in an older
    # polyoms). Capture it in `capture`, put it back in `exchange/api/runner.build_service`. (The rewards
    # programme is the exchange's: `ExchangeState.incentives`; the life's crypto schedule is derived from
    # its seed and time, and the strikes from the markets' terms.)
    # The history archive (exchange/history) is not in the snapshot: it is its own file next to it.

    def __repr__(self) -> str:  # the auth secret never goes into a log line
        return f"ServiceState(version={self.version}, saved_at_ms={self.saved_at_ms})"


class _Header(msgspec.Struct):
    version: int


# --- capture -------------------------------------------------------------------------------------


def _random_state(rng: random.Random) -> RandomState:
    version, internal, gauss_next = rng.getstate()
    return RandomState(version, list(internal), gauss_next)


def spec_state(s: MarketSpec) -> SpecState:
    return SpecState(
        s.condition_id,
        s.question,
        s.slug,
        s.yes_token_id,
        s.no_token_id,
        s.tick.text,
        s.min_size,
        s.neg_risk,
        s.neg_risk_market_id,
        s.fee.rate,
        s.fee.exponent,
        s.fee.taker_only,
        s.outcomes,
        s.accepting_orders,
        s.active,
        s.closed,
        s.end_date_iso,
        s.description,
        s.winning_token_id,
        s.category,
        None if s.rewards is None else RewardsState(*(getattr(s.rewards, f) for f in RewardsState.__struct_fields__)),
        s.taker_delay,
        None if s.terms is None else TermsState(*(getattr(s.terms, f) for f in TermsState.__struct_fields__)),
        s.event_slug,
        s.created_ms,
    )


def order_state(o: Order) -> SavedOrder:
    return SavedOrder(
        o.order_id,
        o.maker,
        o.owner,
        o.market,
        o.asset_id,
        o.outcome,
        o.is_yes,
        o.side,
        o.order_type,
        o.price,
        o.original_size,
        o.maker_amount,
        o.taker_amount,
        o.expiration,
        o.created_at,
        o.timestamp_ms,
        o.seq,
        o.level,
        o.remaining,
        o.size_matched,
        o.size_failed,
        o.cancel_reason,
        o.reserved,
        o.resting,
        o.status,
        list(o.associate_trades),
    )


def trade_state(t: Trade) -> TradeState:
    return TradeState(
        t.trade_id,
        t.taker_order_id,
        t.market,
        t.asset_id,
        t.outcome,
        t.outcome_index,
        t.side,
        t.price,
        t.size,
        t.pusd,
        t.fee,
        t.fee_rate_bps,
        t.owner,
        t.maker_address,
        t.match_time_ms,
        [
            MakerFillState(
                m.order_id,
                m.owner,
                m.maker_address,
                m.matched_amount,
                m.price,
                m.pusd,
                m.asset_id,
                m.outcome,
                m.outcome_index,
                m.side,
                m.match_type,
                m.fee,
                m.fee_rate_bps,
            )
            for m in t.maker_orders
        ],
        t.status,
        t.last_update_ms,
        t.bucket_index,
        t.transaction_hash,
        t.err_msg,
    )


def resolution_state(r: Resolution) -> ResolutionState:
    return ResolutionState(
        r.condition_id,
        r.winning_token_id,
        r.winning_outcome,
        r.resolved_at_ms,
        list(r.canceled),
        dict(r.payouts),
        dict(r.burned),
    )


def _queue_ids(queues: list[object]) -> list[str]:
    out: list[str] = []
    for q in queues:
        if q:
            out.extend(o.order_id for o in q if o.resting)  # type: ignore[attr-defined]
    return out


class RecordCache:
    """Encoded orders and trades that can no longer change, so that a snapshot of a long session costs
    a lookup per old record rather than a copy. A trade is final once CONFIRMED or FAILED; an order once
    it is off the book and every trade it took part in is final (a failing trade changes its
    `size_failed`; a trade no longer in memory was archived final). Records the exchange no longer
    holds in memory (archived, `exchange/history`) are dropped from the cache, so it stays bounded."""

    __slots__ = ("orders", "trades")

    def __init__(self) -> None:
        self.orders: dict[str, msgspec.Raw] = {}
        self.trades: dict[str, msgspec.Raw] = {}

    def order_records(self, ex: Exchange) -> list[msgspec.Raw]:
        cache, trade_by_id, out = self.orders, ex._trade_by_id, []
        # The exchange's dict is in acceptance (= sequence) order, a restored one too.
        for oid, o in ex.all_orders.items():
            raw = cache.get(oid)
            if raw is None:
                raw = msgspec.Raw(msgspec.json.encode(order_state(o)))
                if not o.resting and all(_final(trade_by_id.get(t)) for t in o.associate_trades):
                    cache[oid] = raw
            out.append(raw)
        if len(cache) > len(out):
            held = ex.all_orders
            self.orders = {k: v for k, v in cache.items() if k in held}
        return out

    def trade_records(self, ex: Exchange) -> list[msgspec.Raw]:
        cache, out = self.trades, []
        for t in ex.all_trades:
            raw = cache.get(t.trade_id)
            if raw is None:
                raw = msgspec.Raw(msgspec.json.encode(trade_state(t)))
                if t.is_final:
                    cache[t.trade_id] = raw
            out.append(raw)
        if len(cache) > len(out):
            held = ex._trade_by_id
            self.trades = {k: v for k, v in cache.items() if k in held}
        return out


def _final(t: Trade | None) -> bool:
    return t is None or t.is_final


def capture_exchange(ex: Exchange, cache: RecordCache | None = None) -> ExchangeState:
    """A copy of everything `ex` knows (call it on the exchange's own thread, between operations).

    With a `cache` the orders and trades are already-encoded records (only `encode` can take that
    state; msgspec does not check field types when encoding, so raw JSON stands in for the structs)."""
    ledger = ex.ledger
    st = ex.settlement
    if cache is None:
        orders: list[SavedOrder] = [order_state(o) for o in ex.all_orders.values()]
        trades: list[TradeState] = [trade_state(t) for t in ex.all_trades]
    else:
        orders = cast(list[SavedOrder], cache.order_records(ex))
        trades = cast(list[TradeState], cache.trade_records(ex))
    return ExchangeState(
        fee_collector=ledger.fee_collector.address,
        markets=[spec_state(s) for s in ex.markets()],
        ledger=LedgerState(
            ledger.fee_collector.address,
            [
                AccountState(
                    a.address,
                    a.pusd,
                    a.pusd_reserved,
                    a.pusd_allowance,
                    a.pusd_pending,
                    dict(a.tokens),
                    dict(a.token_reserved),
                    dict(a.token_allowance),
                    dict(a.token_pending),
                )
                for a in ledger
            ],
            ledger.funded_pusd,
            dict(ledger.funded_tokens),
            dict(ledger.collateral_locked),
            dict(ledger.redeemed),
            dict(ledger.burned_tokens),
        ),
        orders=orders,
        books=[BookState(b.market, _queue_ids(list(b.bid_q)), _queue_ids(list(b.ask_q))) for b in ex.books.values()],
        trades=trades,
        last_trades=[LastTrade(tid, p, side) for tid, (p, side) in ex._last_trade.items()],
        resolutions=[resolution_state(r) for r in ex._resolutions.values()],
        settlement=SettlementState(
            st._cursor,
            st._handed,
            [DueStep(due, n, trade.trade_id, fate) for due, n, trade, fate in st.due],
            st._n,
            _random_state(st._rng),
        ),
        order_seq=ex._seq,
        trade_id_prefix=ex.matcher.trade_ids._prefix,
        trade_id_n=ex.matcher.trade_ids._n,
        incentives=ex.incentives.export_state(),
    )


def capture(service: SimService, cache: RecordCache | None = None) -> ServiceState:
    """Everything `service` and its exchange need to come back as they are (`ServiceState`); see
    `capture_exchange` for `cache`."""
    keys = service.keys
    by_key = keys.lookup()
    api_keys = [
        ApiKeyState(by_key[creds.api_key][0] if creds.api_key in by_key else address, nonce)
        for (address, nonce), creds in keys._by_owner.items()
    ]
    life = service.life
    return ServiceState(
        version=VERSION,
        saved_at_ms=service.clock.now_ms(),
        chain_id=service.chain_id,
        seed=service.seed,
        auth_secret=service.auth_secret,
        api_keys=api_keys,
        wallets=[ProxyWallet(owner, sig, wallet) for (owner, sig), wallet in service.wallets.items()],
        auto_funded=sorted(service._funded),
        exchange=capture_exchange(service.exchange, cache),
        life=life.export_state() if life is not None else None,
    )


# --- restore -------------------------------------------------------------------------------------


def spec_from_state(s: SpecState) -> MarketSpec:
    return MarketSpec(
        condition_id=s.condition_id,
        question=s.question,
        slug=s.slug,
        yes_token_id=s.yes_token_id,
        no_token_id=s.no_token_id,
        tick=tick_size(s.tick),
        min_size=s.min_size,
        neg_risk=s.neg_risk,
        neg_risk_market_id=s.neg_risk_market_id,
        fee=FeeCurve(s.fee_rate, s.fee_exponent, s.fee_taker_only),
        outcomes=s.outcomes,
        accepting_orders=s.accepting_orders,
        active=s.active,
        closed=s.closed,
        end_date_iso=s.end_date_iso,
        description=s.description,
        winning_token_id=s.winning_token_id,
        category=s.category,
        rewards=None if s.rewards is None else RewardsConfig(**msgspec.structs.asdict(s.rewards)),
        taker_delay=s.taker_delay,
        terms=None if s.terms is None else PriceTerms(**msgspec.structs.asdict(s.terms)),
        event_slug=s.event_slug,
        created_ms=s.created_ms,
    )


def resolution_from_state(r: ResolutionState) -> Resolution:
    return Resolution(
        r.condition_id,
        r.winning_token_id,
        r.winning_outcome,
        r.resolved_at_ms,
        tuple(r.canceled),
        dict(r.payouts),
        dict(r.burned),
    )


def _restore_ledger(ledger: Ledger, st: LedgerState) -> None:
    for a in st.accounts:
        acct = ledger.account(a.address)
        acct.pusd, acct.pusd_reserved, acct.pusd_allowance, acct.pusd_pending = (
            a.pusd,
            a.pusd_reserved,
            a.pusd_allowance,
            a.pusd_pending,
        )
        acct.tokens = dict(a.tokens)
        acct.token_reserved = dict(a.token_reserved)
        acct.token_allowance = dict(a.token_allowance)
        acct.token_pending = dict(a.token_pending)
    ledger.funded_pusd = st.funded_pusd
    ledger.funded_tokens = dict(st.funded_tokens)
    ledger.collateral_locked = dict(st.collateral_locked)
    ledger.redeemed = dict(st.redeemed)
    ledger.burned_tokens = dict(st.burned_tokens)


def order_from_state(s: SavedOrder, ledger: Ledger) -> Order:
    o = Order(
        s.order_id,
        s.maker,
        s.owner,
        s.market,
        s.asset_id,
        s.outcome,
        s.is_yes,
        s.side,
        s.order_type,
        s.price,
        s.original_size,
        s.maker_amount,
        s.taker_amount,
        s.expiration,
        s.created_at,
        s.timestamp_ms,
        s.seq,
        ledger.account(s.maker),
    )
    o.level = s.level
    o.remaining = s.remaining
    o.size_matched = s.size_matched
    o.size_failed = s.size_failed
    o.cancel_reason = s.cancel_reason
    o.reserved = s.reserved
    o.status = s.status
    o.associate_trades = tuple(s.associate_trades)
    return o


def trade_from_state(s: TradeState) -> Trade:
    makers: list[MakerFill] = []
    for m in s.maker_orders:
        mf = MakerFill(
            m.order_id,
            m.owner,
            m.maker_address,
            m.matched_amount,
            m.price,
            m.pusd,
            m.asset_id,
            m.outcome,
            m.outcome_index,
            m.side,
            m.match_type,
        )
        mf.fee, mf.fee_rate_bps = m.fee, m.fee_rate_bps
        makers.append(mf)
    t = Trade(
        s.trade_id,
        s.taker_order_id,
        s.market,
        s.asset_id,
        s.outcome,
        s.outcome_index,
        s.side,
        s.price,
        s.size,
        s.pusd,
        s.fee,
        s.fee_rate_bps,
        s.owner,
        s.maker_address,
        s.match_time_ms,
        makers,
    )
    t.status = s.status
    t.last_update_ms = s.last_update_ms
    t.bucket_index = s.bucket_index
    t.transaction_hash = s.transaction_hash
    t.err_msg = s.err_msg
    return t


def restore_exchange(
    st: ExchangeState,
    clock: Clock,
    settlement: SettlementConfig | None = None,
    archive: HistoryArchive | None = None,
) -> Exchange:
    """The exchange `st` describes, on `clock`; settlement delays and odds are `settlement` (config).

    With an `archive` (exchange/history) the exchange archives into it again, and what the snapshot holds
    that the archive holds too is skipped when it can no longer change (a crash between an archive run
    and the next snapshot): each record is then in one place. Raises SnapshotError if the state is
    inconsistent (dangling ids, a failing `audit`)."""
    try:
        ex = _restore(st, clock, settlement, archive)
    except SnapshotError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AssertionError, PolyomsError) as exc:
        raise SnapshotError(f"the saved exchange state is inconsistent: {type(exc).__name__}: {exc}") from None
    from polyoms.exchange.audit import audit  # audit imports the engine; keep this module's imports light

    problems = audit(ex)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SnapshotError(f"the saved exchange state fails its audit: {'; '.join(problems[:3])}{more}")
    return ex


_FINAL_TRADE: Final = frozenset({TRADE_CONFIRMED, TRADE_FAILED})


def _archived_records(st: ExchangeState, archive: HistoryArchive | None) -> tuple[set[str], set[str]]:
    """Ids of the snapshot's orders and trades the archive already holds and that cannot change any more:
    final trades already past their first settlement step, finished orders whose trades are all final."""
    if archive is None:
        return set(), set()
    status = {t.trade_id: t.status for t in st.trades}
    trades = {
        t.trade_id
        for t in st.trades[: st.settlement.cursor]
        if t.status in _FINAL_TRADE and archive.has_trade(t.trade_id)
    }
    orders = {
        o.order_id
        for o in st.orders
        if not o.resting
        and all(status.get(tid, TRADE_CONFIRMED) in _FINAL_TRADE for tid in o.associate_trades)
        and archive.has_order(o.order_id)
    }
    return orders, trades


def _restore(
    st: ExchangeState, clock: Clock, settlement: SettlementConfig | None, archive: HistoryArchive | None
) -> Exchange:
    ex = Exchange(
        [spec_from_state(s) for s in st.markets], clock, fee_collector=st.fee_collector, settlement=settlement
    )
    if archive is not None:
        ex.attach_archive(archive)
    ledger = ex.ledger
    _restore_ledger(ledger, st.ledger)
    skip_orders, skip_trades = _archived_records(st, archive)
    orders = ex._orders
    for s in st.orders:
        if s.order_id in orders:
            raise SnapshotError(f"the saved exchange state lists order {s.order_id} twice")
        if s.order_id in skip_orders:
            continue
        if s.asset_id not in ex._tokens:
            raise SnapshotError(f"order {s.order_id} is for unknown token {s.asset_id}")
        orders[s.order_id] = order_from_state(s, ledger)
    for b in st.books:
        book = ex._books[b.condition_id.lower()]
        for oid in (*b.bids, *b.asks):
            o = orders[oid]
            if o.resting or o.market.lower() != b.condition_id.lower() or not 0 < o.level < book.n:
                raise SnapshotError(f"order {oid} cannot rest where the saved book puts it")
            book.add(o)
    for s in st.orders:
        if s.order_id not in skip_orders and orders[s.order_id].resting != s.resting:
            raise SnapshotError(f"order {s.order_id} is {'' if s.resting else 'not '}resting but the books disagree")
    for o in sorted((o for o in orders.values() if o.resting), key=lambda o: o.seq):
        ex._open[o.order_id] = o
        ex._open_by_owner.setdefault(o.owner, {})[o.order_id] = o
        if o.order_type is OrderType.GTD:
            ex._expiry.append(((o.expiration - GTD_SECURITY_THRESHOLD_S) * 1000, o.seq, o))
    heapq.heapify(ex._expiry)
    skipped = 0
    for ts in st.trades:
        if ts.trade_id in skip_trades:
            skipped += 1  # all of them before the settlement cursor (`_archived_records`)
            continue
        t = trade_from_state(ts)
        refs = (t.taker_order_id, *(m.order_id for m in t.maker_orders))
        # A final trade's orders may have been archived; one still settling needs them in memory.
        missing = [oid for oid in refs if oid not in orders]
        if missing and (not t.is_final or archive is None or not all(archive.has_order(oid) for oid in missing)):
            raise SnapshotError(f"trade {t.trade_id} refers to an order the saved state does not have")
        ex._trades.append(t)
        ex._trade_by_id[t.trade_id] = t
        owners = {t.owner}
        ex._trades_by_owner.setdefault(t.owner, []).append(t)
        for mf in t.maker_orders:
            if mf.owner not in owners:
                owners.add(mf.owner)
                ex._trades_by_owner.setdefault(mf.owner, []).append(t)
    for lt in st.last_trades:
        ex._last_trade[lt.token_id] = (lt.price, lt.side)
    for r in st.resolutions:
        ex._resolutions[r.condition_id.lower()] = resolution_from_state(r)
    sst = st.settlement
    pipeline = ex.settlement
    cursor, handed = sst.cursor - skipped, sst.handed - skipped
    if not 0 <= cursor <= handed <= len(ex._trades):
        raise SnapshotError("the saved settlement cursor is outside the trade list")
    pipeline._cursor, pipeline._handed, pipeline._n = cursor, handed, sst.n
    by_id = ex._trade_by_id
    pipeline.due[:] = [(d.due_ms, d.n, by_id[d.trade_id], d.fate) for d in sst.due]
    heapq.heapify(pipeline.due)
    pipeline._rng.setstate((sst.rng.version, tuple(sst.rng.internal), sst.rng.gauss_next))
    pipeline._refresh()
    ex._seq = st.order_seq
    ids = ex.matcher.trade_ids
    ids._prefix = st.trade_id_prefix
    ids._n = (st.trade_id_n // TRADE_ID_EPOCH + 1) * TRADE_ID_EPOCH
    if st.incentives is not None:
        ex.incentives.restore_state(st.incentives)
    return ex


def restore_service_state(service: SimService, st: ServiceState) -> None:
    """Put back what the service keeps besides its exchange: API keys, proxy wallets, auto-funding."""
    for k in st.api_keys:
        service.keys.create(k.address, k.nonce)
    for w in st.wallets:
        service.link_wallet(w.owner, w.signature_type, w.wallet)
    service._funded.update(st.auto_funded)


# --- the file ------------------------------------------------------------------------------------


def encode(state: ServiceState) -> bytes:
    return msgspec.json.encode(state)


def decode(data: bytes, where: str = "exchange state") -> ServiceState:
    """The state in `data`, or SnapshotError (not JSON, another version, not the schema)."""
    try:
        header = msgspec.json.decode(data, type=_Header)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{where} is not a polyoms exchange snapshot: {exc}") from None
    if header.version != VERSION:
        raise SnapshotError(
            f"{where} has snapshot version {header.version}; this polyoms reads version {VERSION} "
            "(start over with `polyoms run --fresh`)"
        )
    try:
        return msgspec.json.decode(data, type=ServiceState)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{where} is corrupt: {exc}") from None


def save(path: Path, state: ServiceState) -> None:
    """Write `state` to `path` atomically: a reader (or a crash) sees the old file or the new one, whole.

    Readable by its owner only (it holds the exchange's auth secret), mode set before the first byte."""
    data = encode(state)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def load(path: Path) -> ServiceState | None:
    """The state saved at `path`; None when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode(data, str(path))
