"""The exchange's history archive: finished orders, final trades and retired markets, in SQLite.

A week of the living market accepts about a million orders; kept in memory they would grow the process
by ~100 MB a day. So an archive run (`Archiver`, an exchange `Timer` every `ARCHIVE_EVERY_MS` of
exchange time) moves what can no longer change out of memory:

* orders that are finished (off the book) and whose every trade is final;
* trades that are final (CONFIRMED or FAILED) and last changed more than the window ago;
* resolved markets once retired (`Exchange.retire_market`): their spec and resolution.

The exchange's queries (`get_order`, `trade`, `trades`, `market`, `market_of_token`, `resolution`) answer
from memory and the archive together, so REST and the Data API see the whole history.

Storage: stdlib `sqlite3` in WAL mode, one connection used only by the exchange's single writer (the
exchange is single-threaded, principle 5; `check_same_thread` is off because a server builds the exchange
on one thread and runs it on its loop's). Records are the snapshot's own msgspec structs
(`exchange/persist`), so an archived record decodes to exactly what was archived. Inserts are
idempotent by id (`INSERT OR REPLACE`): a crash between an archive run and the next snapshot leaves
records in both, and the restore skips what the archive holds (no duplicates, nothing lost).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import msgspec

from polyoms.core.errors import ConfigError
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade

if TYPE_CHECKING:
    from polyoms.exchange.accounts import Ledger
    from polyoms.exchange.engine import Exchange, Resolution

__all__ = [
    "ARCHIVE_EVERY_MS",
    "ARCHIVE_WINDOW_MS",
    "SCHEMA_VERSION",
    "Archiver",
    "HistoryArchive",
]

SCHEMA_VERSION: Final = 1
ARCHIVE_WINDOW_MS: Final = 3_600_000
"""Final trades stay in memory this long after their last change (exchange time), and resolved markets
this long after resolving before they are retired: recent history is answered from memory."""
ARCHIVE_EVERY_MS: Final = 300_000
"""How often (exchange time) an archive run moves records out of memory."""
CACHE_SIZE: Final = 2048
"""Decoded archived records kept per kind (orders, trades, markets): repeated lookups skip SQLite."""

_K = TypeVar("_K")
_V = TypeVar("_V")

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID",
    # Trade ids are a fixed prefix and a zero-padded counter (trades.TradeIds): id order is match order.
    "CREATE TABLE IF NOT EXISTS trades (trade_id TEXT PRIMARY KEY, market TEXT NOT NULL,"
    " match_time INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS trades_by_market ON trades (market, trade_id)",
    # Who took part (API key owners), for GET /data/trades.
    "CREATE TABLE IF NOT EXISTS trade_owners (owner TEXT NOT NULL, trade_id TEXT NOT NULL,"
    " PRIMARY KEY (owner, trade_id)) WITHOUT ROWID",
    # Which funder wallets took part (lower case), for `maker_address` lookups (the Data API, per wallet).
    "CREATE TABLE IF NOT EXISTS trade_wallets (address TEXT NOT NULL, trade_id TEXT NOT NULL,"
    " PRIMARY KEY (address, trade_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS markets (condition_id TEXT PRIMARY KEY, spec BLOB NOT NULL,"
    " resolution BLOB) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS market_tokens (token_id TEXT PRIMARY KEY, condition_id TEXT NOT NULL) WITHOUT ROWID",
)


class _Lru(Generic[_K, _V]):
    """A small bounded cache."""

    __slots__ = ("_d", "_size")

    def __init__(self, size: int) -> None:
        self._d: OrderedDict[_K, _V] = OrderedDict()
        self._size = size

    def get(self, key: _K) -> _V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: _K, value: _V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        if len(self._d) > self._size:
            self._d.popitem(last=False)

    def drop(self, key: _K) -> None:
        self._d.pop(key, None)

    def __len__(self) -> int:
        return len(self._d)


class HistoryArchive:
    """Finished orders, final trades and retired markets on disk (module doc)."""

    def __init__(self, path: str | Path, *, cache_size: int = CACHE_SIZE) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db = self._db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            for stmt in _SCHEMA:
                db.execute(stmt)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                db.close()
                raise ConfigError(
                    f"{self.path} is a history archive of schema {row[0]}; this polyoms reads schema {SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path} is not a usable history archive: {exc}") from None
        self._orders: _Lru[str, Order] = _Lru(cache_size)
        self._trades: _Lru[str, Trade] = _Lru(cache_size)
        self._markets: _Lru[str, MarketSpec] = _Lru(cache_size)
        self.counts = {"orders": 0, "trades": 0, "markets": 0}
        """Records written by this process (an archive run's progress, for benchmarks and logs)."""

    def close(self) -> None:
        self._db.close()

    # --- writing ---------------------------------------------------------------------------------

    def put(
        self,
        orders: Sequence[Order] = (),
        trades: Sequence[Trade] = (),
        markets: Sequence[tuple[MarketSpec, Resolution | None]] = (),
    ) -> None:
        """Write records in one transaction; a record already there (same id) is replaced."""
        from polyoms.exchange import persist  # persist imports the engine, which imports this module

        if not orders and not trades and not markets:
            return
        enc = msgspec.json.encode
        order_rows = [(o.order_id, enc(persist.order_state(o))) for o in orders]
        trade_rows = [(t.trade_id, t.market.lower(), t.match_time, enc(persist.trade_state(t))) for t in trades]
        owner_rows: list[tuple[str, str]] = []
        wallet_rows: list[tuple[str, str]] = []
        for t in trades:
            tid = t.trade_id
            owners = {t.owner, *(m.owner for m in t.maker_orders)}
            wallets = {t.maker_address.lower(), *(m.maker_address.lower() for m in t.maker_orders)}
            owner_rows.extend((o, tid) for o in owners)
            wallet_rows.extend((w, tid) for w in wallets)
        market_rows = [
            (
                spec.condition_id.lower(),
                enc(persist.spec_state(spec)),
                None if res is None else enc(persist.resolution_state(res)),
            )
            for spec, res in markets
        ]
        token_rows = [(tid, spec.condition_id.lower()) for spec, _ in markets for tid in spec.token_ids]
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?)", order_rows)
            db.executemany("INSERT OR REPLACE INTO trades VALUES (?, ?, ?, ?)", trade_rows)
            db.executemany("INSERT OR IGNORE INTO trade_owners VALUES (?, ?)", owner_rows)
            db.executemany("INSERT OR IGNORE INTO trade_wallets VALUES (?, ?)", wallet_rows)
            db.executemany("INSERT OR REPLACE INTO markets VALUES (?, ?, ?)", market_rows)
            db.executemany("INSERT OR REPLACE INTO market_tokens VALUES (?, ?)", token_rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for o in orders:
            self._orders.drop(o.order_id)
        for t in trades:
            self._trades.drop(t.trade_id)
        for spec, _ in markets:
            self._markets.drop(spec.condition_id.lower())
        self.counts["orders"] += len(orders)
        self.counts["trades"] += len(trades)
        self.counts["markets"] += len(markets)

    # --- reading ---------------------------------------------------------------------------------

    def has_order(self, order_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone() is not None

    def has_trade(self, trade_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM trades WHERE trade_id = ?", (trade_id,)).fetchone() is not None

    def order(self, order_id: str, ledger: Ledger) -> Order | None:
        """The archived order (its `account` is the funder's ledger account, as a live one's)."""
        from polyoms.exchange import persist

        o = self._orders.get(order_id)
        if o is not None:
            return o
        row = self._db.execute("SELECT data FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        o = persist.order_from_state(msgspec.json.decode(row[0], type=persist.SavedOrder), ledger)
        self._orders.put(order_id, o)
        return o

    def trade(self, trade_id: str) -> Trade | None:
        t = self._trades.get(trade_id)
        if t is not None:
            return t
        row = self._db.execute("SELECT data FROM trades WHERE trade_id = ?", (trade_id,)).fetchone()
        return None if row is None else self._decode_trade(trade_id, row[0])

    def _decode_trade(self, trade_id: str, data: bytes) -> Trade:
        from polyoms.exchange import persist

        t = self._trades.get(trade_id)
        if t is None:
            t = persist.trade_from_state(msgspec.json.decode(data, type=persist.TradeState))
            self._trades.put(trade_id, t)
        return t

    def trades(
        self,
        owner: str | None = None,
        *,
        trade_id: str | None = None,
        maker_address: str | None = None,
        market: str | None = None,
        before: int | None = None,
        after: int | None = None,
        skip: Callable[[str], bool] | None = None,
    ) -> Iterator[Trade]:
        """Archived trades in match (= id) order, filtered as `Exchange.trades` filters (asset_id is
        left to the caller: it looks into the maker fills); `skip(trade_id)` drops ids held elsewhere."""
        sql = ["SELECT t.trade_id, t.data FROM trades t"]
        args: list[object] = []
        if owner is not None:
            sql.append("JOIN trade_owners o ON o.trade_id = t.trade_id AND o.owner = ?")
            args.append(owner)
        if maker_address:
            sql.append("JOIN trade_wallets w ON w.trade_id = t.trade_id AND w.address = ?")
            args.append(maker_address.lower())
        where: list[str] = []
        if trade_id:
            where.append("t.trade_id = ?")
            args.append(trade_id)
        if market:
            where.append("t.market = ?")
            args.append(market.lower())
        if before is not None:
            where.append("t.match_time <= ?")
            args.append(before)
        if after is not None:
            where.append("t.match_time >= ?")
            args.append(after)
        if where:
            sql.append("WHERE " + " AND ".join(where))
        sql.append("ORDER BY t.trade_id")
        # Read all rows first: the caller may query the archive again (or an archive run may write)
        # while it consumes the trades, and an open SELECT cursor must not see that.
        rows = self._db.execute(" ".join(sql), args).fetchall()
        for tid, data in rows:
            if skip is not None and skip(tid):
                continue
            yield self._decode_trade(tid, data)

    def market(self, condition_id: str) -> MarketSpec | None:
        """A retired market's spec."""
        from polyoms.exchange import persist

        cid = condition_id.lower()
        spec = self._markets.get(cid)
        if spec is not None:
            return spec
        row = self._db.execute("SELECT spec FROM markets WHERE condition_id = ?", (cid,)).fetchone()
        if row is None:
            return None
        spec = persist.spec_from_state(msgspec.json.decode(row[0], type=persist.SpecState))
        self._markets.put(cid, spec)
        return spec

    def market_of_token(self, token_id: str) -> MarketSpec | None:
        row = self._db.execute("SELECT condition_id FROM market_tokens WHERE token_id = ?", (token_id,)).fetchone()
        return None if row is None else self.market(row[0])

    def resolution(self, condition_id: str) -> Resolution | None:
        from polyoms.exchange import persist

        row = self._db.execute(
            "SELECT resolution FROM markets WHERE condition_id = ?", (condition_id.lower(),)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return persist.resolution_from_state(msgspec.json.decode(row[0], type=persist.ResolutionState))

    def markets(self) -> list[MarketSpec]:
        """Every retired market, in condition id order."""
        ids = [r[0] for r in self._db.execute("SELECT condition_id FROM markets ORDER BY condition_id")]
        return [spec for cid in ids if (spec := self.market(cid)) is not None]

    def count(self, kind: str) -> int:
        """Records held of one kind: `orders`, `trades` or `markets`."""
        if kind not in self.counts:
            raise ValueError(f"unknown record kind {kind!r}")
        return int(self._db.execute(f"SELECT count(*) FROM {kind}").fetchone()[0])


class Archiver:
    """The exchange `Timer` that runs `Exchange.archive_history` every `every_ms` of exchange time."""

    __slots__ = ("_exchange", "every_ms", "next_ms", "runs")

    def __init__(self, exchange: Exchange, every_ms: int = ARCHIVE_EVERY_MS) -> None:
        if every_ms <= 0:
            raise ConfigError(f"the archive interval must be positive, got {every_ms}")
        self._exchange = exchange
        self.every_ms = every_ms
        self.next_ms = exchange.clock.now_ms() + every_ms
        self.runs = 0

    def run(self, now_ms: int) -> None:
        # Due first, so that a query the run makes (none today) cannot run it again.
        self.next_ms = now_ms + self.every_ms
        self.runs += 1
        self._exchange.archive_history(now_ms)


def trade_parties(trades: Iterable[Trade]) -> set[str]:
    """Owners (API keys) that took part in `trades`, taker or maker."""
    out: set[str] = set()
    for t in trades:
        out.add(t.owner)
        out.update(m.owner for m in t.maker_orders)
    return out
