"""Daemon configuration: one TOML file plus the environment, validated into typed settings.

Every setting is one row of SCHEMA (below): the loader, `polyoms config init` (a commented template),
`polyoms config show` (effective values and their origins) and docs/config.md (the reference, tested to
match) all read it. The environment wins over the file; a command-line flag wins over both.

Secrets never live in the config file: the private key comes from POLYOMS_PRIVATE_KEY or from a key
file that only its owner can read (mode 0600 or stricter; anything looser is refused with the exact
chmod that fixes it), API credentials from POLYOMS_API_KEY / POLYOMS_API_SECRET / POLYOMS_API_PASSPHRASE
or, when absent, derived from the key through L1 at start. Unknown keys are errors: a typo must not
silently fall back to a default.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from polyoms.core.enums import SignatureType
from polyoms.core.errors import ConfigError, InvalidKeyError, PolyomsError
from polyoms.core.units import Micro, fmt_micro, to_micro
from polyoms.exchange.life.scenarios import SCENARIOS
from polyoms.oms.journal import WRITERS
from polyoms.oms.risk import RiskLimits
from polyoms.polymarket.client.redact import register_secret
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.auth import ApiCreds
from polyoms.polymarket.protocol.keys import Signer, to_checksum_address
from polyoms.venues.registry import VENUES, venue_kind
from polyoms.venues.settings import LocalConfig as LocalConfig  # the [local] and [polymarket] sections
from polyoms.venues.settings import PolymarketConfig as PolymarketConfig
from polyoms.venues.settings import read_key_file

ENV_PRIVATE_KEY: Final = "POLYOMS_PRIVATE_KEY"
ENV_KEY_FILE: Final = "POLYOMS_KEY_FILE"
ENV_API_KEY: Final = "POLYOMS_API_KEY"
ENV_API_SECRET: Final = "POLYOMS_API_SECRET"
ENV_API_PASSPHRASE: Final = "POLYOMS_API_PASSPHRASE"
ENV_STATE_DIR: Final = "POLYOMS_STATE_DIR"
DEFAULT_STATE_DIR: Final = "~/.polyoms"
LOOPBACK: Final = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class VenueConfig:
    kind: str = "local"
    """A name of the venue registry (venues/registry.py): "polymarket", "local", "inprocess"."""


@dataclass(frozen=True, slots=True)
class ControlConfig:
    host: str = LOOPBACK
    port: int = 0


@dataclass(frozen=True, slots=True)
class EngineConfig:
    heartbeat_s: float = 5.0
    """0 disables heartbeats (the venue's dead-man switch then never arms)."""
    reconcile_every_s: float = 60.0
    maintenance_s: float = 1.0
    unknown_grace_ms: int = 10_000
    cancel_on_stop: bool = True
    """Cancel every open order when the daemon stops (the heartbeat dead-man switch would, ~10 s later)."""
    journal_writer: str = "process"
    """Who writes the journal (oms.journal): "process" (a child process on the other core: the fastest
    event path, an intent's commit costs one pipe round trip more), "thread" or "inline"."""
    parents_on_restart: str = "interrupt"
    """What a restart after a crash does to a parent order found working (algos.parents): "interrupt"
    (its resting children are cancelled; it ends with exactly what filled) or "resume" (it works what is
    left). A parent's own `on_restart=` param wins."""
    rest_fallback_after_s: float = 15.0
    """When the user stream stays unconfirmed (down, flapping or silently stalled) this long, the engine
    polls REST for open orders, trades and books and admits reduce-only orders (oms/fallback.py); 0 = off."""


@dataclass(frozen=True, slots=True)
class LogConfig:
    json: bool | None = None
    """None: JSON when stdout is not a terminal."""
    level: str = "info"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    venue: VenueConfig = field(default_factory=VenueConfig)
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR).expanduser())
    control: ControlConfig = field(default_factory=ControlConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    local: LocalConfig = field(default_factory=LocalConfig)
    polymarket: PolymarketConfig = field(default_factory=PolymarketConfig)
    log: LogConfig = field(default_factory=LogConfig)
    source: str = "defaults"
    """Where the settings came from (for messages)."""


@dataclass(frozen=True, slots=True, repr=False)
class Secrets:
    """The signing key and (optionally) API credentials. Never printed: repr shows only where they came from."""

    private_key: str | None
    api_creds: ApiCreds | None = None
    key_source: str = ""

    def __repr__(self) -> str:
        return f"Secrets(key={'set' if self.private_key else 'none'} from {self.key_source or '-'}, " + (
            f"api_key={self.api_creds.api_key})" if self.api_creds else "api_creds=derive)"
        )

    __str__ = __repr__


# --- the schema: every setting, once -------------------------------------------------------------------
#
# SCHEMA is the one list of settings. The loader, `polyoms config init` (the template), `polyoms config show`
# and docs/config.md are all generated from it. To add a setting:
#   1. add the field (and its default) to its section's dataclass above (risk: RiskLimits in oms/risk.py);
#   2. add one Key(...) row below, in the section's block: its kind (how it is parsed and written back as
#      TOML), a one-line doc and, if the environment may set it, the variable;
#   3. regenerate the reference: `make docs` (tests/ops/test_config.py fails while docs/config.md differs,
#      and while a dataclass field has no row or a row no field).
# A new [section]: its frozen dataclass, a field of that name on DaemonConfig, an entry in SECTIONS, rows.
# Kinds at hand: INT, PORT, BOOL, MONEY, PATH, URL, WS_URL, _seconds_kind(), _int_kind(lo, hi),
# _choice_kind(names), _optional(kind, "none literal"); or a Kind(type, parse, show) of your own.


@dataclass(frozen=True, slots=True)
class Kind:
    """How one setting is read (a TOML value, or the string of an environment variable) and written back."""

    type: str
    """For the reference (docs/config.md)."""
    parse: Callable[[Any, str], Any]
    """(raw value, dotted name) -> typed value; raises ConfigError naming the setting."""
    show: Callable[[Any], str]
    """Typed value -> a TOML literal that parses back to it."""


@dataclass(frozen=True, slots=True)
class Key:
    section: str
    """"" for the top level."""
    name: str
    kind: Kind
    doc: str
    env: str | None = None
    """The environment variable that sets it (wins over the file)."""

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _show_path(p: Path) -> str:
    try:
        return _toml_str("~/" + p.relative_to(Path.home()).as_posix())
    except (ValueError, RuntimeError):
        return _toml_str(str(p))


def _int_kind(lo: int, hi: int, type_: str = "integer") -> Kind:
    return Kind(type_, lambda v, n: _int(v, n, lo, hi), str)


def _seconds_kind(*, allow_zero: bool = False) -> Kind:
    kind = "seconds (0 disables)" if allow_zero else "seconds"
    return Kind(kind, lambda v, n: _seconds(v, n, allow_zero=allow_zero), repr)


def _choice_kind(choices: tuple[str, ...] | Mapping[str, Any], *, fold: bool = False) -> Kind:
    names = tuple(choices)

    def parse(v: Any, n: str) -> str:
        return _choice(v.strip().lower() if fold and isinstance(v, str) else v, n, names)

    return Kind("one of " + ", ".join(f'"{c}"' for c in names), parse, _toml_str)


def _optional(kind: Kind, null: str, *also: str) -> Kind:
    """`kind`, or None written as the string `null` (and read from it or any of `also`)."""
    nulls = {null, *also}

    def parse(v: Any, n: str) -> Any:
        return None if isinstance(v, str) and v.strip().lower() in nulls else kind.parse(v, n)

    def show(v: Any) -> str:
        return _toml_str(null) if v is None else kind.show(v)

    return Kind(f'{kind.type}, or "{null}"', parse, show)


def _parse_path(v: Any, n: str) -> Path:
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{n} must be a non-empty path string, got {v!r}", field=n)
    return Path(v.strip()).expanduser()


def _parse_venue_kind(v: Any, n: str) -> str:
    try:
        return VENUES.canonical(str(v))
    except ConfigError as exc:
        raise ConfigError(f"{n}: {exc.message}", field=n, value=str(v)) from None


def _parse_host(v: Any, n: str) -> str:
    host = str(v)
    if host not in (LOOPBACK, "localhost", "::1"):
        raise ConfigError(f"{n} must be loopback (127.0.0.1): the control API is local only, got {host!r}", field=n)
    return LOOPBACK if host == "localhost" else host


def _parse_level(v: Any, n: str) -> str:
    level = str(v).lower()
    if level not in _LEVELS:
        raise ConfigError(f"{n} must be debug, info, warning or error, got {level!r}", field=n)
    return level


def _parse_signature_type(v: Any, n: str) -> SignatureType:
    try:
        return SignatureType.parse(v)
    except PolyomsError as exc:
        raise ConfigError(exc.message, field=n) from None


def _parse_address(v: Any, n: str) -> str:
    try:
        return to_checksum_address(str(v).strip())
    except PolyomsError as exc:
        raise ConfigError(f"{n}: {exc.message}", field=n) from None


_LEVELS: Final = ("debug", "info", "warning", "error")
INT: Final = _int_kind(0, 2**63, "integer ≥ 0")
PORT: Final = _int_kind(0, 65535, "port (0 = any free port)")
BOOL: Final = Kind("true or false", lambda v, n: _bool(v, n), lambda v: "true" if v else "false")
MONEY: Final = Kind('pUSD, a decimal string ("1000.5")', lambda v, n: _money(v, n), lambda v: _toml_str(fmt_micro(v)))
PATH: Final = Kind("path", _parse_path, _show_path)
URL: Final = Kind("http(s) URL", lambda v, n: _url(v, n), _toml_str)
WS_URL: Final = Kind("ws(s) URL", lambda v, n: _url(v, n, ws=True), _toml_str)

SCHEMA: Final[tuple[Key, ...]] = (
    Key("", "state_dir", PATH, "Journal, control URL and token (created 0700).", ENV_STATE_DIR),
    # [venue]: which venue the daemon trades on (venues/registry.py)
    Key(
        "venue",
        "kind",
        Kind("one of " + ", ".join(f'"{name}"' for name in VENUES.names()), _parse_venue_kind, _toml_str),
        "; ".join(f'"{e.name}": {e.summary}' for e in VENUES)
        + '. A top-level `venue = "..."` (the older spelling) is read as this key.',
        "POLYOMS_VENUE",
    ),
    # [control]
    Key(
        "control",
        "host",
        Kind("loopback address", _parse_host, _toml_str),
        "The control API listens on loopback only (127.0.0.1, localhost or ::1).",
    ),
    Key(
        "control",
        "port",
        PORT,
        "Control API port; 0 picks a free one (written to state_dir/control.url).",
        "POLYOMS_CONTROL_PORT",
    ),
    # [engine]
    Key(
        "engine",
        "heartbeat_s",
        _seconds_kind(allow_zero=True),
        "Heartbeat to the venue's dead-man switch; 0 disables it (the switch then never arms).",
    ),
    Key(
        "engine",
        "reconcile_every_s",
        _seconds_kind(),
        "How often open orders and balances are checked against the venue.",
    ),
    Key(
        "engine", "maintenance_s", _seconds_kind(), "Period of the maintenance tick (expiries, timers, parent orders)."
    ),
    Key(
        "engine",
        "unknown_grace_ms",
        _int_kind(0, 3_600_000, "milliseconds"),
        "How long an order the venue does not report is given before it is resolved by a lookup.",
    ),
    Key("engine", "cancel_on_stop", BOOL, "Cancel every open order when the daemon stops."),
    Key(
        "engine",
        "journal_writer",
        _choice_kind(WRITERS),
        '"process" (a child process: the fastest event path), "thread" or "inline".',
    ),
    Key(
        "engine",
        "parents_on_restart",
        _choice_kind(("interrupt", "resume"), fold=True),
        'What a restart after a crash does to a parent order found working: "interrupt" (its resting children '
        'are cancelled, it ends with exactly what filled) or "resume" (it works what is left); its own '
        "on_restart= param wins. A graceful stop cancels parent orders.",
    ),
    Key(
        "engine",
        "rest_fallback_after_s",
        _seconds_kind(allow_zero=True),
        "When the user stream stays down (or flapping, or silently stalled) this long, the engine polls REST "
        "(open orders, trades; books the market stream does not trust) within the rate limits, and admission "
        "is reduce-only until the stream is back: cancels and SELLs of held shares work, BUYs are refused "
        "(status shows stream_mode). 0 = off: admission stays closed while the stream is down.",
    ),
    # [risk]: pre-trade checks (oms/risk.py)
    Key("risk", "max_order_notional", MONEY, "Largest notional (price × size, pUSD) of one order."),
    Key("risk", "max_market_exposure", MONEY, "Largest exposure (pUSD) in one market, open orders included."),
    Key("risk", "max_total_exposure", MONEY, "Largest exposure (pUSD) over all markets, open orders included."),
    Key(
        "risk",
        "max_spread",
        _optional(MONEY, "none", ""),
        "Widest bid/ask spread at which a marketable order (one that trades on arrival) is admitted; a resting "
        'order is admitted into a wide, one-sided or empty book. "none" disables the guard.',
    ),
    Key("risk", "confirm_above", MONEY, "Orders above this notional (pUSD) need explicit confirmation (--yes)."),
    Key("risk", "max_orders", _int_kind(1, 1_000_000, "integer ≥ 1"), "At most this many new orders per window_ms."),
    Key("risk", "window_ms", _int_kind(1, 86_400_000, "milliseconds"), "The window of the max_orders rate limit."),
    # [local]: the embedded exchange (venue kinds "local" and "inprocess")
    Key("local", "seed", INT, "Seed of the local exchange (markets, background traders)."),
    Key(
        "local",
        "markets",
        _optional(PATH, ""),
        'A markets file (`polyoms sim --config` format); "" = the default markets.',
    ),
    Key("local", "fund", MONEY, "pUSD given to the daemon's wallet at the first start of a local session."),
    Key(
        "local",
        "scenario",
        _optional(_choice_kind(SCENARIOS), ""),
        'Background traders and a reference feed; "" = a quiet exchange where only the daemon trades.',
    ),
    Key("local", "faults", BOOL, "Inject the exchange's faults (disconnects, stalls, rejects) to rehearse recovery."),
    Key("local", "port", PORT, "Port of the embedded exchange on 127.0.0.1; 0 picks a free one."),
    # [polymarket]: the real venue (venue kind "polymarket")
    Key("polymarket", "clob_url", URL, "The CLOB REST API.", "POLYOMS_CLOB_URL"),
    Key("polymarket", "gamma_url", URL, "The Gamma markets API (market search)."),
    Key("polymarket", "data_url", URL, "The Data API (positions, trades history)."),
    Key("polymarket", "ws_url", WS_URL, "Base of the WebSocket channels (/ws/market and /ws/user are appended)."),
    Key(
        "polymarket",
        "chain_id",
        _int_kind(1, 2**31, "integer (chain id)"),
        "137 = Polygon mainnet.",
        "POLYOMS_CHAIN_ID",
    ),
    Key(
        "polymarket",
        "signature_type",
        Kind("0-3 or EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271", _parse_signature_type, lambda v: str(int(v))),
        "How orders are signed: 0 = the key's own wallet (EOA); 1-3 = a proxy, Safe or 1271 wallet (needs funder).",
        "POLYOMS_SIGNATURE_TYPE",
    ),
    Key(
        "polymarket",
        "funder",
        _optional(Kind("address", _parse_address, _toml_str), ""),
        'The wallet that holds the funds when signature_type is not 0; "" = the key\'s address.',
        "POLYOMS_FUNDER",
    ),
    Key(
        "polymarket",
        "key_file",
        _optional(PATH, ""),
        "A file holding the hex private key (mode 0600); or set POLYOMS_PRIVATE_KEY.",
        ENV_KEY_FILE,
    ),
    Key("polymarket", "api_nonce", INT, "Nonce for deriving the API credentials through L1."),
    # [log]
    Key("log", "json", _optional(BOOL, "auto", ""), 'JSON log lines; "auto" = JSON when stdout is not a terminal.'),
    Key("log", "level", Kind("debug, info, warning or error", _parse_level, _toml_str), "Lowest level logged."),
)

SECTIONS: Final[Mapping[str, type[Any]]] = {
    "venue": VenueConfig,
    "control": ControlConfig,
    "engine": EngineConfig,
    "risk": RiskLimits,
    "local": LocalConfig,
    "polymarket": PolymarketConfig,
    "log": LogConfig,
}
"""Each [section] of the file and the type it is read into (a field of DaemonConfig of the same name)."""

SECRET_ENV: Final = (
    (
        ENV_PRIVATE_KEY,
        "The hex private key (or polymarket.key_file). None: the local venue keeps its own in local/wallet.key.",
    ),
    (ENV_API_KEY, "API key; with the secret and passphrase below. All three unset: derived from the key (L1)."),
    (ENV_API_SECRET, "API secret."),
    (ENV_API_PASSPHRASE, "API passphrase."),
)
"""Secrets come only from the environment (or a 0600 key file), never from the config file."""


def default_of(key: Key) -> Any:
    owner: Any = DaemonConfig() if not key.section else SECTIONS[key.section]()
    return getattr(owner, key.name)


@dataclass(frozen=True, slots=True)
class Setting:
    """One resolved setting and where its value came from."""

    key: Key
    value: Any
    origin: str
    """"default", "file <path>" or "environment <VAR>"."""


# --- reading ---------------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> DaemonConfig:
    """Settings from `path` (TOML; None = defaults only) overlaid with the environment."""
    return effective_config(path, env)[0]


def effective_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[DaemonConfig, list[Setting]]:
    """load_config, and every setting with its origin (for `polyoms config show`)."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path).expanduser()
        try:
            with p.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist", field="config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}", field="config") from None
        except OSError as exc:
            raise ConfigError(f"config file {p} cannot be read: {exc.strerror}", field="config") from None
        source = str(p)
    try:
        return _build(data, env, source)
    except ConfigError as exc:
        if source == "defaults":
            raise
        raise ConfigError(f"{source}: {exc.message}", **exc.context) from None


def _build(data: dict[str, Any], env: Mapping[str, str], source: str) -> tuple[DaemonConfig, list[Setting]]:
    if isinstance(data.get("venue"), str):  # the older spelling `venue = "local"`: [venue] kind
        data = {**data, "venue": {"kind": data["venue"]}}
    top = {k.name for k in SCHEMA if not k.section}
    _no_unknown(data, top | set(SECTIONS), "")
    tables = {name: _section(data, name, {k.name for k in SCHEMA if k.section == name}) for name in SECTIONS}
    values: dict[str, dict[str, Any]] = {name: {} for name in ("", *SECTIONS)}
    settings: list[Setting] = []
    for key in SCHEMA:
        table = data if not key.section else tables[key.section]
        from_env = env.get(key.env, "").strip() if key.env else ""
        if from_env:
            origin = f"environment {key.env}"
            try:
                value = key.kind.parse(from_env, key.path)
            except ConfigError as exc:
                raise ConfigError(f"{key.env}: {exc.message}", **exc.context) from None
        elif key.name in table:
            origin = f"file {source}"
            value = key.kind.parse(table[key.name], key.path)
        else:
            origin, value = "default", default_of(key)
        values[key.section][key.name] = value
        settings.append(Setting(key, value, origin))
    config = DaemonConfig(**values[""], **{name: cls(**values[name]) for name, cls in SECTIONS.items()}, source=source)
    _check(config)
    return config, settings


def _check(config: DaemonConfig) -> None:
    """Rules across settings."""
    pm = config.polymarket
    if pm.chain_id not in constants.EXCHANGES:
        known = ", ".join(str(c) for c in constants.EXCHANGES)
        raise ConfigError(
            f"polymarket.chain_id {pm.chain_id} has no known exchange contracts (known: {known})",
            field="polymarket.chain_id",
        )
    needs_key = venue_kind(config.venue.kind).needs_key
    if needs_key and pm.signature_type is not SignatureType.EOA and pm.funder is None:
        raise ConfigError(
            f"polymarket.signature_type {pm.signature_type.name} needs polymarket.funder: the proxy, Safe or "
            "deposit wallet that holds the funds (set POLYOMS_FUNDER or [polymarket] funder)",
            field="polymarket.funder",
        )


# --- writing: the template, the effective configuration, the reference ------------------------------------


def _by_section() -> list[tuple[str, list[Key]]]:
    order = ["", *SECTIONS]
    return [(s, [k for k in SCHEMA if k.section == s]) for s in order]


def template() -> str:
    """A config file with every setting commented out at its default (`polyoms config init`)."""
    lines = [
        "# polyoms daemon configuration (TOML). Every setting is listed, commented out, at its default:",
        "# uncomment and change what you need. An environment variable named [env ...] wins over this file.",
        "# Secrets never go here: the private key comes from POLYOMS_PRIVATE_KEY or a 0600 key file",
        "# (polymarket.key_file), API credentials from POLYOMS_API_KEY/_SECRET/_PASSPHRASE or derived.",
        "# Reference: docs/config.md; effective values: polyoms config show --config THIS_FILE",
    ]
    for section, keys in _by_section():
        lines.append("")
        if section:
            lines.append(f"[{section}]")
        for key in keys:
            env = f" [env {key.env}]" if key.env else ""
            lines.append(f"# {key.doc}{env}")
            lines.append(f"# {key.name} = {key.kind.show(default_of(key))}")
    return "\n".join(lines) + "\n"


def show(settings: list[Setting], env: Mapping[str, str] | None = None, source: str = "defaults") -> str:
    """The effective configuration as TOML, each value's origin at the right; secrets as set / not set."""
    env = os.environ if env is None else env
    rows: list[tuple[str, str]] = []
    for section, _ in _by_section():
        if section:
            rows.append(("", ""))
            rows.append((f"[{section}]", ""))
        for s in settings:
            if s.key.section == section:
                rows.append((f"{s.key.name} = {s.key.kind.show(s.value)}", s.origin))
    width = max(len(text) for text, origin in rows if origin)
    out = [f"# effective configuration (file: {source}); origin of each value on the right", ""]
    out += [f"{text:<{width}}  # {origin}" if origin else text for text, origin in rows]
    out += ["", "# secrets (never shown)"]
    out += [f"# {line}" for line in secret_status(settings, env)]
    return "\n".join(out) + "\n"


def secret_status(settings: list[Setting], env: Mapping[str, str]) -> list[str]:
    """Whether each secret is set and from where, without reading or printing any of them."""
    key_file = next((s.value for s in settings if s.key.path == "polymarket.key_file"), None)
    if env.get(ENV_PRIVATE_KEY, "").strip():
        key = f"set (environment {ENV_PRIVATE_KEY})"
    elif key_file is not None:
        key = f"set (key file {key_file})" if Path(key_file).exists() else f"not set: key file {key_file} is missing"
    else:
        key = "not set (the local venue keeps its own in <state_dir>/local/wallet.key; polymarket needs one)"
    api = [name for name in (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE) if env.get(name, "").strip()]
    if len(api) == 3:
        creds = "set (environment)"
    elif api:
        creds = f"incomplete: only {', '.join(api)} set"
    else:
        creds = "not set (derived from the key through L1 at start)"
    return [f"private key: {key}", f"API credentials: {creds}"]


def reference_doc() -> str:
    """docs/config.md (regenerate with `make docs`)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from the schema in src/polyoms/ops/config.py by `make docs`; do not edit by hand. -->",
        "",
        "`polyoms run --config FILE` reads one TOML file. Precedence, highest first: a command-line flag",
        "(`--state-dir`, `--venue`, `--port`), the environment variable listed for a setting, the file, the",
        "default. Unknown settings are errors (a typo must not fall back to a default silently).",
        "",
        "- `polyoms config init [PATH]` writes a template with every setting commented out at its default.",
        "- `polyoms config show [--config FILE]` prints the effective configuration and where each value",
        "  came from (default, file, environment); secrets only as set / not set.",
        "",
    ]
    for section, keys in _by_section():
        out.append(f"## [{section}]" if section else "## Top level")
        out.append("")
        out.append("| key | type | default | env | meaning |")
        out.append("|---|---|---|---|---|")
        for k in keys:
            env = f"`{k.env}`" if k.env else ""
            out.append(
                f"| `{k.name}` | {cell(k.kind.type)} | `{cell(k.kind.show(default_of(k)))}` | {env} | {cell(k.doc)} |"
            )
        out.append("")
    out += [
        "## Secrets",
        "",
        "Never in the config file, never printed or logged. The key file must be readable by its owner only",
        "(mode 0600 or stricter; a looser one is refused with the chmod that fixes it).",
        "",
        "| env | meaning |",
        "|---|---|",
    ]
    out += [f"| `{name}` | {cell(doc)} |" for name, doc in SECRET_ENV]
    return "\n".join(out) + "\n"


# --- secrets ---------------------------------------------------------------------------------------------


def load_secrets(config: DaemonConfig, env: Mapping[str, str] | None = None, *, required: bool = True) -> Secrets:
    """The private key (environment first, then the key file) and API credentials from the environment.

    Every value is registered for redaction before anything can print it. The key is checked to parse
    (never echoed). `required=False` returns an empty Secrets when no key is configured (the local
    venue then uses the key of its session, <state_dir>/local/wallet.key)."""
    env = os.environ if env is None else env
    key = env.get(ENV_PRIVATE_KEY, "").strip() or None
    source = f"environment {ENV_PRIVATE_KEY}" if key else ""
    if key:
        register_secret(key)
    elif config.polymarket.key_file is not None:
        key = read_key_file(config.polymarket.key_file)
        source = f"key file {config.polymarket.key_file}"
    if key is None:
        if required:
            raise InvalidKeyError(
                f"no signing key: set {ENV_PRIVATE_KEY}, or put the hex key in a file (chmod 600) and point "
                f"{ENV_KEY_FILE} or [polymarket] key_file at it"
            )
        return Secrets(None)
    try:
        Signer(key)
    except PolyomsError:
        raise InvalidKeyError(f"the private key from {source} is not a valid secp256k1 key (64 hex digits)") from None
    api_key = env.get(ENV_API_KEY, "").strip()
    secret = env.get(ENV_API_SECRET, "").strip()
    passphrase = env.get(ENV_API_PASSPHRASE, "").strip()
    register_secret(secret or None, passphrase or None)
    creds = None
    if api_key or secret or passphrase:
        missing = [
            n for n, v in ((ENV_API_KEY, api_key), (ENV_API_SECRET, secret), (ENV_API_PASSPHRASE, passphrase)) if not v
        ]
        if missing:
            raise InvalidKeyError(
                f"API credentials are incomplete: also set {', '.join(missing)} (or unset all "
                "three to derive them from the key)"
            )
        try:
            creds = ApiCreds(api_key, secret, passphrase)
        except PolyomsError as exc:
            raise InvalidKeyError(f"API credentials from the environment: {exc.message}") from None
    return Secrets(key, creds, source)


# --- field parsers -----------------------------------------------------------------------------------------


def _no_unknown(table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        where = f"[{prefix}]" if prefix else "the top level"
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(allowed))}",
            field=f"{prefix}.{unknown[0]}" if prefix else unknown[0],
        )


def _section(data: Mapping[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table", field=name)
    _no_unknown(raw, allowed, name)
    return raw


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}", field=name)
    try:
        n = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, got {value!r}", field=name) from None
    if isinstance(value, float) and value != n:
        raise ConfigError(f"{name} must be an integer, got {value!r}", field=name)
    if not lo <= n <= hi:
        raise ConfigError(f"{name} must be within [{lo}, {hi}], got {n}", field=name)
    return n


def _seconds(value: Any, name: str, *, allow_zero: bool = False) -> float:
    # Durations are not money: a float is the natural type for a timer interval.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}", field=name)
    try:
        s = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}", field=name) from None
    if s < 0 or (s == 0 and not allow_zero) or s != s or s > 86_400:
        raise ConfigError(f"{name} must be within (0, 86400] seconds, got {value!r}", field=name)
    return s


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}", field=name)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):  # from the environment
        return value.strip().lower() in ("true", "1")
    raise ConfigError(f"{name} must be true or false, got {value!r}", field=name)


def _money(value: Any, name: str) -> Micro:
    if isinstance(value, float):
        raise ConfigError(f'{name} must be a decimal string or an integer (e.g. "1000.5"), not a float', field=name)
    try:
        m = to_micro(value if isinstance(value, int) else str(value), name)
    except PolyomsError as exc:
        raise ConfigError(exc.message, field=name) from None
    if m < 0:
        raise ConfigError(f"{name} must not be negative", field=name)
    return m


def _url(value: Any, name: str, *, ws: bool = False) -> str:
    text = str(value).strip().rstrip("/")
    schemes = ("ws://", "wss://") if ws else ("http://", "https://")
    if not text.startswith(schemes):
        raise ConfigError(f"{name} must start with {' or '.join(schemes)}, got {value!r}", field=name)
    return text
