"""Markets the local exchange trades: their static description, a default set and config loading.

A market is one CTF condition with two outcome tokens (YES first). Ids that a config leaves out are
derived deterministically from the slug (SHA-256), so they look like the venue's — a bytes32 hex
condition id and 256-bit decimal token ids — and stay stable between runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from polyoms.core.errors import ConfigError, InputError
from polyoms.core.units import MICRO, TICK_SIZES, TickSize, fmt_micro, tick_size, to_decimal, to_micro
from polyoms.exchange.fees import NO_FEES, FeeCurve

DEFAULT_MIN_SIZE: Final = 5 * MICRO
UP_DOWN: Final = "updown"
ABOVE: Final = "above"
PRICE_TERM_KINDS: Final = frozenset({UP_DOWN, ABOVE})
_CONDITION_RE: Final = re.compile(r"^0x[0-9a-fA-F]{64}$")
_MAX_UINT256: Final = (1 << 256) - 1


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def derive_condition_id(slug: str) -> str:
    return "0x" + _digest(f"polyoms:condition:{slug}").hex()


def derive_token_id(condition_id: str, outcome_index: int) -> str:
    return str(int.from_bytes(_digest(f"polyoms:position:{condition_id.lower()}:{outcome_index}"), "big"))


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class RewardsConfig:
    """A market's liquidity-rewards programme (the venue's `rewards` / `r` block, doc §4.11).

    Resting orders within `max_spread` of the size-cutoff-adjusted midpoint and of at least
    `min_size` shares are scored; `daily_rate` pUSD a day is split among the makers by score.
    `in_game_multiplier` is the formula's b (1 outside live games). Prices and sizes in micro-units.
    """

    max_spread: int
    """v, in micro-pUSD of price (3.5 ¢ = 35_000)."""
    min_size: int
    """Micro-shares."""
    daily_rate: int
    """Micro-pUSD paid a day to the market's makers."""
    in_game_multiplier: str = "1"

    def __post_init__(self) -> None:
        if isinstance(self.max_spread, bool) or not isinstance(self.max_spread, int) or not 0 < self.max_spread < MICRO:
            raise ConfigError("rewards max_spread must be within (0, 1) pUSD", field="rewards.max_spread")
        for name in ("min_size", "daily_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"rewards {name} must be non-negative micro-units", field=f"rewards.{name}")
        try:
            b = to_decimal(self.in_game_multiplier, "in_game_multiplier")
        except (ValueError, InputError) as exc:
            raise ConfigError("rewards in_game_multiplier must be a decimal number", field="rewards.b") from exc
        if b <= 0:
            raise ConfigError("rewards in_game_multiplier must be positive", field="rewards.b")
        object.__setattr__(self, "in_game_multiplier", format(b.normalize(), "f"))


@dataclass(frozen=True, slots=True)
class PriceTerms:
    """How a crypto market resolves on a price feed (the resolution oracle, not the exchange price).

    `kind` is `UP_DOWN` (YES = "Up" wins when the oracle's price at `end_ms` is at or above the one at
    `start_ms`) or `ABOVE` (YES wins when the price at `end_ms` is at or above `strike`). For an
    up/down market `strike` is the start price once it is known, "" before.
    """

    symbol: str
    """The oracle's symbol, e.g. "btc/usd"."""
    kind: str
    window: str
    """The series' window label: "5m", "15m", "1h", "1d" (or "" for a one-off market)."""
    start_ms: int
    end_ms: int
    strike: str = ""
    """Decimal string."""

    def __post_init__(self) -> None:
        if self.kind not in PRICE_TERM_KINDS:
            raise ConfigError(f"price terms kind must be one of {sorted(PRICE_TERM_KINDS)}", field="terms.kind")
        if not self.symbol:
            raise ConfigError("price terms need a symbol", field="terms.symbol")
        if self.end_ms <= self.start_ms:
            raise ConfigError("price terms must end after they start", field="terms.end_ms")
        if self.kind == ABOVE and not self.strike:
            raise ConfigError("an above-strike market needs a strike", field="terms.strike")


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One binary market (condition). Amounts in micro-units; `min_size` in shares."""

    condition_id: str
    question: str
    slug: str
    yes_token_id: str
    no_token_id: str
    tick: TickSize = TICK_SIZES["0.01"]
    min_size: int = DEFAULT_MIN_SIZE
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    fee: FeeCurve = NO_FEES
    outcomes: tuple[str, str] = ("Yes", "No")
    accepting_orders: bool = True
    active: bool = True
    closed: bool = False
    end_date_iso: str = ""
    description: str = field(default="", compare=False)
    winning_token_id: str = ""
    """Set when the market has resolved (it is then also closed)."""
    category: str = ""
    """The venue's category ("crypto", "sports", "politics", ...): it picks the maker-rebate share."""
    rewards: RewardsConfig | None = None
    taker_delay: bool = False
    """The venue's `itode`: marketable orders wait the taker delay before matching."""
    terms: PriceTerms | None = None
    event_slug: str = ""
    """The event the market belongs to (Gamma), "" for a market of its own."""
    created_ms: int = 0
    """When the exchange listed it (0: from the start)."""

    def __post_init__(self) -> None:
        where = f"market {self.slug or self.condition_id!r}"
        if not _CONDITION_RE.match(self.condition_id):
            raise ConfigError(f"{where}: condition_id must be 0x + 64 hex digits", field="condition_id")
        for name in ("yes_token_id", "no_token_id"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value.isdigit() and int(value) <= _MAX_UINT256):
                raise ConfigError(f"{where}: {name} must be a decimal uint256 string", field=name)
            if value != str(int(value)):
                raise ConfigError(f"{where}: {name} must not have leading zeros", field=name)
        if self.yes_token_id == self.no_token_id:
            raise ConfigError(f"{where}: the two token ids must differ", field="no_token_id")
        if not isinstance(self.tick, TickSize):
            raise ConfigError(f"{where}: tick must be a TickSize", field="tick")
        if isinstance(self.min_size, bool) or not isinstance(self.min_size, int) or self.min_size <= 0:
            raise ConfigError(f"{where}: min_size must be a positive number of micro-shares", field="min_size")
        if len(self.outcomes) != 2 or not all(isinstance(o, str) and o for o in self.outcomes):
            raise ConfigError(f"{where}: outcomes must be two non-empty names", field="outcomes")
        if self.neg_risk_market_id and not self.neg_risk:
            raise ConfigError(f"{where}: neg_risk_market_id set on a market that is not neg-risk")
        if self.winning_token_id and self.winning_token_id not in (self.yes_token_id, self.no_token_id):
            raise ConfigError(f"{where}: winning_token_id is not one of its tokens", field="winning_token_id")

    @property
    def token_ids(self) -> tuple[str, str]:
        return (self.yes_token_id, self.no_token_id)

    @property
    def resolved(self) -> bool:
        return bool(self.winning_token_id)

    def outcome_of(self, token_id: str) -> str:
        if token_id == self.yes_token_id:
            return self.outcomes[0]
        if token_id == self.no_token_id:
            return self.outcomes[1]
        raise KeyError(token_id)

    def with_flags(self, **changes: Any) -> MarketSpec:
        """A copy with lifecycle flags changed (accepting_orders, active, closed, tick, winning_token_id...)."""
        return replace(self, **changes)


def binary_market(
    slug: str,
    question: str,
    *,
    tick: str | TickSize = "0.01",
    min_size: int = DEFAULT_MIN_SIZE,
    fee: FeeCurve = NO_FEES,
    outcomes: tuple[str, str] = ("Yes", "No"),
    neg_risk: bool = False,
    neg_risk_market_id: str = "",
    condition_id: str | None = None,
    yes_token_id: str | None = None,
    no_token_id: str | None = None,
    accepting_orders: bool = True,
    active: bool = True,
    closed: bool = False,
    end_date_iso: str = "",
    description: str = "",
    category: str = "",
    taker_delay: bool = False,
    rewards: RewardsConfig | None = None,
) -> MarketSpec:
    """A market with any id it is not given derived from its slug."""
    cid = condition_id or derive_condition_id(slug)
    return MarketSpec(
        condition_id=cid,
        question=question,
        slug=slug,
        yes_token_id=yes_token_id or derive_token_id(cid, 0),
        no_token_id=no_token_id or derive_token_id(cid, 1),
        tick=tick_size(tick),
        min_size=min_size,
        neg_risk=neg_risk,
        neg_risk_market_id=neg_risk_market_id,
        fee=fee,
        outcomes=outcomes,
        accepting_orders=accepting_orders,
        active=active,
        closed=closed,
        end_date_iso=end_date_iso,
        description=description,
        category=category,
        taker_delay=taker_delay,
        rewards=rewards,
    )


def neg_risk_event(
    event_slug: str,
    question: str,
    outcomes: Sequence[str],
    *,
    tick: str | TickSize = "0.01",
    min_size: int = DEFAULT_MIN_SIZE,
    fee: FeeCurve = NO_FEES,
    end_date_iso: str = "",
) -> tuple[MarketSpec, ...]:
    """An N-outcome event as N linked binary YES/NO markets (doc §7.5).

    `question` may contain `{outcome}`. Each market matches on its own; the shared
    `neg_risk_market_id` only records that they belong together.
    """
    if len(outcomes) < 2:
        raise ConfigError(f"neg-risk event {event_slug!r} needs at least two outcomes", field="outcomes")
    if len({slugify(o) for o in outcomes}) != len(outcomes):
        raise ConfigError(f"neg-risk event {event_slug!r} has duplicate outcomes", field="outcomes")
    nr_id = derive_condition_id(f"neg-risk-event:{event_slug}")
    return tuple(
        binary_market(
            f"{event_slug}-{slugify(name)}",
            question.replace("{outcome}", name),
            tick=tick,
            min_size=min_size,
            fee=fee,
            neg_risk=True,
            neg_risk_market_id=nr_id,
            end_date_iso=end_date_iso,
        )
        for name in outcomes
    )


def default_markets() -> tuple[MarketSpec, ...]:
    """The built-in markets: fee-free and crypto-fee binaries, a fine-tick one and a 3-outcome event."""
    return (
        binary_market(
            "btc-above-150k-on-december-31-2026",
            "Will Bitcoin close above $150,000 on December 31, 2026?",
            fee=FeeCurve("0.07", 1),
            end_date_iso="2026-12-31T23:59:59Z",
            category="crypto",
            # 4.5 ¢ and 20 shares: the most common live programme (a public survey of /rewards/markets/current).
            rewards=RewardsConfig(max_spread=45_000, min_size=20 * MICRO, daily_rate=100 * MICRO),
        ),
        binary_market(
            "will-nasa-confirm-life-on-europa-in-2026",
            "Will NASA confirm life on Europa in 2026?",
            end_date_iso="2026-12-31T23:59:59Z",
        ),
        binary_market(
            "fed-cuts-rates-in-december-2026",
            "Will the Fed cut interest rates at its December 2026 meeting?",
            tick="0.001",
            fee=FeeCurve("0.04", 1),
            end_date_iso="2026-12-16T19:00:00Z",
            category="finance",
            rewards=RewardsConfig(max_spread=35_000, min_size=50 * MICRO, daily_rate=25 * MICRO),
        ),
        binary_market(
            "will-a-human-land-on-mars-by-2027",
            "Will a human land on Mars before 2027?",
            tick="0.0001",
            end_date_iso="2026-12-31T23:59:59Z",
        ),
        *neg_risk_event(
            "world-cup-2026-winner",
            "Will {outcome} win the 2026 FIFA World Cup?",
            ("Brazil", "France", "Argentina"),
            fee=FeeCurve("0.05", 1),
            end_date_iso="2026-07-19T23:00:00Z",
        ),
    )


def check_unique(markets: Iterable[MarketSpec]) -> tuple[MarketSpec, ...]:
    """The markets as a tuple, refusing duplicate condition or token ids."""
    out = tuple(markets)
    seen_c: set[str] = set()
    seen_t: set[str] = set()
    for m in out:
        if m.condition_id.lower() in seen_c:
            raise ConfigError(f"duplicate condition_id {m.condition_id} (market {m.slug!r})")
        seen_c.add(m.condition_id.lower())
        for t in m.token_ids:
            if t in seen_t:
                raise ConfigError(f"duplicate token id {t} (market {m.slug!r})")
            seen_t.add(t)
    return out


# --- configuration files -------------------------------------------------------------------------

_MARKET_KEYS: Final = frozenset(
    {
        "slug", "question", "description", "condition_id", "yes_token_id", "no_token_id", "outcomes",
        "tick_size", "min_order_size", "fee", "neg_risk", "accepting_orders", "active", "closed",
        "end_date_iso", "category", "taker_delay", "rewards",
    }
)  # fmt: skip
_REWARDS_KEYS: Final = frozenset({"max_spread", "min_size", "daily_rate", "in_game_multiplier"})
_EVENT_KEYS: Final = frozenset({"slug", "question", "outcomes", "tick_size", "min_order_size", "fee", "end_date_iso"})
_FEE_KEYS: Final = frozenset({"rate", "exponent", "taker_only"})


def _get(entry: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    if key not in entry:
        if default is None:
            raise ConfigError(f"{where}: missing {key!r}", field=key)
        return default
    value = entry[key]
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: {key!r} must not be a boolean", field=key)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: {key!r} must be {names}, got {type(value).__name__}", field=key)
    return value


def _check_keys(entry: Any, allowed: frozenset[str], where: str) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a table/object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {sorted(allowed)}")
    return entry


def _common(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        tick = tick_size(_get(entry, "tick_size", (str, int, float), where, "0.01"))
        min_size = to_micro(_get(entry, "min_order_size", (str, int, float), where, "5"), "min_order_size")
    except InputError as exc:
        raise ConfigError(f"{where}: {exc.message}") from exc
    if min_size <= 0:
        raise ConfigError(f"{where}: min_order_size must be positive, got {fmt_micro(min_size)}")
    fee = NO_FEES
    if "fee" in entry:
        f = _check_keys(entry["fee"], _FEE_KEYS, f"{where}.fee")
        rate = _get(f, "rate", (str, int, float), f"{where}.fee")
        exponent = _get(f, "exponent", int, f"{where}.fee", 1)
        taker_only = _get(f, "taker_only", bool, f"{where}.fee", True)
        try:
            fee = FeeCurve.of(rate, exponent, taker_only)
        except InputError as exc:
            raise ConfigError(f"{where}.fee: {exc.message}") from exc
    return {
        "tick": tick,
        "min_size": min_size,
        "fee": fee,
        "end_date_iso": _get(entry, "end_date_iso", str, where, ""),
    }


def _rewards(entry: Mapping[str, Any], where: str) -> RewardsConfig | None:
    """A `[markets.rewards]` table: max_spread in cents (as the venue gives `rewards_max_spread`),
    min_size in shares, daily_rate in pUSD a day, in_game_multiplier a decimal (default 1)."""
    if "rewards" not in entry:
        return None
    where = f"{where}.rewards"
    r = _check_keys(entry["rewards"], _REWARDS_KEYS, where)
    num = (str, int, float)
    try:
        cents = to_micro(_get(r, "max_spread", num, where), "max_spread")
        min_size = to_micro(_get(r, "min_size", num, where), "min_size")
        daily = to_micro(_get(r, "daily_rate", num, where), "daily_rate")
    except InputError as exc:
        raise ConfigError(f"{where}: {exc.message}") from exc
    if cents % 100:
        raise ConfigError(f"{where}: max_spread has more than 4 decimals of a cent", field="rewards.max_spread")
    b = _get(r, "in_game_multiplier", num, where, "1")
    return RewardsConfig(cents // 100, min_size, daily, str(b))


def markets_from_config(data: Any) -> tuple[MarketSpec, ...]:
    """Markets from a parsed config: `{"markets": [...], "neg_risk_events": [...]}`."""
    root = _check_keys(data, frozenset({"markets", "neg_risk_events"}), "config")
    out: list[MarketSpec] = []
    for i, raw in enumerate(_get(root, "markets", list, "config", [])):
        where = f"markets[{i}]"
        entry = _check_keys(raw, _MARKET_KEYS, where)
        slug = _get(entry, "slug", str, where)
        where = f"markets[{i}] ({slug})"
        outcomes = _get(entry, "outcomes", list, where, ["Yes", "No"])
        if len(outcomes) != 2 or not all(isinstance(o, str) and o for o in outcomes):
            raise ConfigError(f"{where}: outcomes must be a list of two names", field="outcomes")
        try:
            out.append(
                binary_market(
                    slug,
                    _get(entry, "question", str, where),
                    outcomes=(outcomes[0], outcomes[1]),
                    neg_risk=_get(entry, "neg_risk", bool, where, False),
                    condition_id=_get(entry, "condition_id", str, where, "") or None,
                    yes_token_id=_get(entry, "yes_token_id", str, where, "") or None,
                    no_token_id=_get(entry, "no_token_id", str, where, "") or None,
                    accepting_orders=_get(entry, "accepting_orders", bool, where, True),
                    active=_get(entry, "active", bool, where, True),
                    closed=_get(entry, "closed", bool, where, False),
                    description=_get(entry, "description", str, where, ""),
                    category=_get(entry, "category", str, where, ""),
                    taker_delay=_get(entry, "taker_delay", bool, where, False),
                    rewards=_rewards(entry, where),
                    **_common(entry, where),
                )
            )
        except ConfigError:
            raise
        except InputError as exc:
            raise ConfigError(f"{where}: {exc.message}") from exc
    for i, raw in enumerate(_get(root, "neg_risk_events", list, "config", [])):
        where = f"neg_risk_events[{i}]"
        entry = _check_keys(raw, _EVENT_KEYS, where)
        slug = _get(entry, "slug", str, where)
        where = f"neg_risk_events[{i}] ({slug})"
        names = _get(entry, "outcomes", list, where)
        if not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"{where}: outcomes must be non-empty names", field="outcomes")
        out.extend(neg_risk_event(slug, _get(entry, "question", str, where), names, **_common(entry, where)))
    if not out:
        raise ConfigError("config defines no markets")
    return check_unique(out)


def load_markets(path: str | Path) -> tuple[MarketSpec, ...]:
    """Markets from a `.toml` or `.json` file."""
    data = read_config_file(path)
    try:
        return markets_from_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from exc


def read_config_file(path: str | Path) -> Any:
    """The parsed content of a `.toml` or `.json` config file, or a ConfigError naming the file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read market config {p}: {exc.strerror or exc}") from exc
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(raw.decode())
        elif suffix == ".json":
            data = json.loads(raw)
        else:
            raise ConfigError(f"market config {p} must end in .toml or .json")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"market config {p} is not valid {suffix[1:].upper()}: {exc}") from exc
    return data
