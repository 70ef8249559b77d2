"""Daemon configuration: one TOML file plus the environment, validated into typed settings.

    state_dir = "~/.polyoms"          # journal, control token, control URL (created 0700)
    venue = "local"                   # "local" (embedded exchange, default) or "polymarket"

    [control]   port = 0              # 127.0.0.1 only; 0 = any free port (written to state_dir)
    [engine]    heartbeat_s = 5.0, reconcile_every_s = 60.0, maintenance_s = 1.0, unknown_grace_ms = 10000,
                cancel_on_stop = true, journal_writer = "process"   # or "thread" / "inline"
    [risk]      max_order_notional = "5000", max_market_exposure = "20000", max_total_exposure = "100000",
                max_spread = "0.1", confirm_above = "1000", max_orders = 50, window_ms = 10000
    [local]     seed = 0, markets = "markets.toml", fund = "1000", scenario = "calm", faults = false, port = 0
    [polymarket] clob_url, gamma_url, data_url, ws_url, chain_id = 137, signature_type = 0,
                funder = "0x…", key_file = "/path/to/key", api_nonce = 0
    [log]       json = false, level = "info"

Environment (wins over the file): POLYOMS_VENUE, POLYOMS_STATE_DIR, POLYOMS_CONTROL_PORT,
POLYOMS_CLOB_URL, POLYOMS_CHAIN_ID, POLYOMS_SIGNATURE_TYPE, POLYOMS_FUNDER, POLYOMS_KEY_FILE.

Secrets never live in the config file: the private key comes from POLYOMS_PRIVATE_KEY or from a key
file that only its owner can read (mode 0600 or stricter; anything looser is refused with the exact
chmod that fixes it), API credentials from POLYOMS_API_KEY / POLYOMS_API_SECRET / POLYOMS_API_PASSPHRASE
or, when absent, derived from the key through L1 at start. Unknown keys are errors: a typo must not
silently fall back to a default.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from polyoms.core.enums import SignatureType
from polyoms.core.errors import ConfigError, InvalidKeyError, PolyomsError
from polyoms.core.units import MICRO, Micro, to_micro
from polyoms.exchange.life.scenarios import SCENARIOS
from polyoms.oms.journal import WRITERS
from polyoms.oms.risk import RiskLimits
from polyoms.polymarket.client.redact import register_secret
from polyoms.polymarket.protocol import constants as C
from polyoms.polymarket.protocol.auth import ApiCreds
from polyoms.polymarket.protocol.keys import Signer, to_checksum_address

ENV_PRIVATE_KEY: Final = "POLYOMS_PRIVATE_KEY"
ENV_KEY_FILE: Final = "POLYOMS_KEY_FILE"
ENV_API_KEY: Final = "POLYOMS_API_KEY"
ENV_API_SECRET: Final = "POLYOMS_API_SECRET"
ENV_API_PASSPHRASE: Final = "POLYOMS_API_PASSPHRASE"
ENV_STATE_DIR: Final = "POLYOMS_STATE_DIR"
DEFAULT_STATE_DIR: Final = "~/.polyoms"
LOOPBACK: Final = "127.0.0.1"

VenueKind = Literal["local", "polymarket"]


class KeyFilePermissionError(ConfigError):
    """A key file others can read (or write): refused; the message carries the chmod that fixes it."""


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


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """The embedded local exchange, served on 127.0.0.1 and spoken to over sockets like the venue."""

    seed: int = 0
    markets: Path | None = None
    """A markets file (`polyoms sim --config` format); None = the default markets."""
    fund: Micro = 1_000 * MICRO
    """pUSD given to the daemon's wallet at start."""
    scenario: str | None = "calm"
    """Background traders and a reference feed (calm, trending, jump, thin, ...); None (or "") = an empty,
    quiet exchange where only the daemon trades."""
    faults: bool = False
    port: int = 0


@dataclass(frozen=True, slots=True)
class PolymarketConfig:
    clob_url: str = "https://clob.polymarket.com"
    gamma_url: str = "https://gamma-api.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    ws_url: str = "wss://ws-subscriptions-clob.polymarket.com"
    """Base of the WebSocket channels (`/ws/market`, `/ws/user` are appended)."""
    chain_id: int = C.POLYGON
    signature_type: SignatureType = SignatureType.EOA
    funder: str | None = None
    key_file: Path | None = None
    api_nonce: int = 0


@dataclass(frozen=True, slots=True)
class LogConfig:
    json: bool | None = None
    """None: JSON when stdout is not a terminal."""
    level: str = "info"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    venue: VenueKind = "local"
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR).expanduser())
    control: ControlConfig = field(default_factory=ControlConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    local: LocalConfig = field(default_factory=LocalConfig)
    polymarket: PolymarketConfig = field(default_factory=PolymarketConfig)
    log: LogConfig = field(default_factory=LogConfig)
    source: str = "defaults"
    """Where the settings came from (for messages)."""

    @property
    def chain_id(self) -> int:
        return self.polymarket.chain_id if self.venue == "polymarket" else C.POLYGON


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


# --- reading ---------------------------------------------------------------------------------------------

_SECTIONS: Final = {"control", "engine", "risk", "local", "polymarket", "log"}
_TOP: Final = {"venue", "state_dir"} | _SECTIONS


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> DaemonConfig:
    """Settings from `path` (TOML; None = defaults only) overlaid with the environment."""
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


def _build(data: dict[str, Any], env: Mapping[str, str], source: str) -> DaemonConfig:
    _no_unknown(data, _TOP, "")
    venue = str(env.get("POLYOMS_VENUE") or data.get("venue", "local")).strip().lower()
    if venue not in ("local", "polymarket"):
        raise ConfigError(f'venue must be "local" or "polymarket", got {venue!r}', field="venue")
    state_dir = Path(str(env.get(ENV_STATE_DIR) or data.get("state_dir", DEFAULT_STATE_DIR))).expanduser()

    control_raw = _section(data, "control", {"host", "port"})
    host = str(control_raw.get("host", LOOPBACK))
    if host not in (LOOPBACK, "localhost", "::1"):
        raise ConfigError(
            f"control.host must be loopback (127.0.0.1): the control API is local only, got {host!r}",
            field="control.host",
        )
    control_port = _int(env.get("POLYOMS_CONTROL_PORT", control_raw.get("port", 0)), "control.port", 0, 65535)
    control = ControlConfig(host=LOOPBACK if host == "localhost" else host, port=control_port)

    eng_raw = _section(
        data,
        "engine",
        {"heartbeat_s", "reconcile_every_s", "maintenance_s", "unknown_grace_ms", "cancel_on_stop", "journal_writer"},
    )
    engine = EngineConfig(
        heartbeat_s=_seconds(eng_raw.get("heartbeat_s", 5.0), "engine.heartbeat_s", allow_zero=True),
        reconcile_every_s=_seconds(eng_raw.get("reconcile_every_s", 60.0), "engine.reconcile_every_s"),
        maintenance_s=_seconds(eng_raw.get("maintenance_s", 1.0), "engine.maintenance_s"),
        unknown_grace_ms=_int(eng_raw.get("unknown_grace_ms", 10_000), "engine.unknown_grace_ms", 0, 3_600_000),
        cancel_on_stop=_bool(eng_raw.get("cancel_on_stop", True), "engine.cancel_on_stop"),
        journal_writer=_choice(eng_raw.get("journal_writer", "process"), "engine.journal_writer", WRITERS),
    )

    risk = _risk(_section(data, "risk", set(RiskLimits.__struct_fields__)))

    local_raw = _section(data, "local", {"seed", "markets", "fund", "scenario", "faults", "port"})
    scenario = str(local_raw.get("scenario", "calm")) or None
    if scenario is not None and scenario not in SCENARIOS:
        raise ConfigError(
            f'local.scenario must be one of {", ".join(SCENARIOS)} (or "" for none), got {scenario!r}',
            field="local.scenario",
        )
    markets = local_raw.get("markets")
    local = LocalConfig(
        seed=_int(local_raw.get("seed", 0), "local.seed", 0, 2**63),
        markets=Path(str(markets)).expanduser() if markets else None,
        fund=_money(local_raw.get("fund", "1000"), "local.fund"),
        scenario=scenario,
        faults=_bool(local_raw.get("faults", False), "local.faults"),
        port=_int(local_raw.get("port", 0), "local.port", 0, 65535),
    )

    pm_raw = _section(
        data,
        "polymarket",
        {
            "clob_url",
            "gamma_url",
            "data_url",
            "ws_url",
            "chain_id",
            "signature_type",
            "funder",
            "key_file",
            "api_nonce",
        },
    )
    defaults = PolymarketConfig()
    sig_raw = env.get("POLYOMS_SIGNATURE_TYPE", pm_raw.get("signature_type", 0))
    try:
        signature_type = SignatureType.parse(sig_raw)
    except PolyomsError as exc:
        raise ConfigError(exc.message, field="polymarket.signature_type") from None
    funder_raw = env.get("POLYOMS_FUNDER") or pm_raw.get("funder")
    funder = None
    if funder_raw:
        try:
            funder = to_checksum_address(str(funder_raw))
        except PolyomsError as exc:
            raise ConfigError(f"polymarket.funder: {exc.message}", field="polymarket.funder") from None
    key_file_raw = env.get(ENV_KEY_FILE) or pm_raw.get("key_file")
    pm = PolymarketConfig(
        clob_url=_url(env.get("POLYOMS_CLOB_URL") or pm_raw.get("clob_url", defaults.clob_url), "polymarket.clob_url"),
        gamma_url=_url(pm_raw.get("gamma_url", defaults.gamma_url), "polymarket.gamma_url"),
        data_url=_url(pm_raw.get("data_url", defaults.data_url), "polymarket.data_url"),
        ws_url=_url(pm_raw.get("ws_url", defaults.ws_url), "polymarket.ws_url", ws=True),
        chain_id=_int(env.get("POLYOMS_CHAIN_ID", pm_raw.get("chain_id", C.POLYGON)), "polymarket.chain_id", 1, 2**31),
        signature_type=signature_type,
        funder=funder,
        key_file=Path(str(key_file_raw)).expanduser() if key_file_raw else None,
        api_nonce=_int(pm_raw.get("api_nonce", 0), "polymarket.api_nonce", 0, 2**63),
    )
    if pm.chain_id not in C.EXCHANGES:
        known = ", ".join(str(c) for c in C.EXCHANGES)
        raise ConfigError(
            f"polymarket.chain_id {pm.chain_id} has no known exchange contracts (known: {known})",
            field="polymarket.chain_id",
        )
    if venue == "polymarket" and pm.signature_type is not SignatureType.EOA and pm.funder is None:
        raise ConfigError(
            f"polymarket.signature_type {pm.signature_type.name} needs polymarket.funder: the proxy, Safe or "
            "deposit wallet that holds the funds (set POLYOMS_FUNDER or [polymarket] funder)",
            field="polymarket.funder",
        )

    log_raw = _section(data, "log", {"json", "level"})
    level = str(log_raw.get("level", "info")).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log.level must be debug, info, warning or error, got {level!r}", field="log.level")
    log_json = log_raw.get("json")
    log = LogConfig(json=None if log_json is None else _bool(log_json, "log.json"), level=level)
    return DaemonConfig(
        venue="polymarket" if venue == "polymarket" else "local",
        state_dir=state_dir,
        control=control,
        engine=engine,
        risk=risk,
        local=local,
        polymarket=pm,
        log=log,
        source=source,
    )


def with_overrides(config: DaemonConfig, **changes: Any) -> DaemonConfig:
    """A copy with top-level fields replaced (e.g. state_dir from a command-line flag)."""
    return replace(config, **changes)


# --- secrets ---------------------------------------------------------------------------------------------


def check_key_file(path: Path) -> None:
    """Refuse a key file that anyone but its owner can read or write (mode 0600 or stricter)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist", field="key_file") from None
    except OSError as exc:
        raise ConfigError(f"key file {path} cannot be read: {exc.strerror}", field="key_file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"key file {path} is not a regular file", field="key_file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFilePermissionError(
            f"key file {path} has mode {mode:04o}: others can read it. Fix: chmod 600 {path}",
            field="key_file",
            mode=f"{mode:04o}",
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyFilePermissionError(
            f"key file {path} belongs to another user (uid {st.st_uid}). Fix: chown {os.getuid()} {path} "
            f"&& chmod 600 {path}",
            field="key_file",
        )


def read_key_file(path: Path) -> str:
    check_key_file(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"key file {path} cannot be read: {exc}", field="key_file") from None
    register_secret(text)
    if not text:
        raise InvalidKeyError(f"key file {path} is empty: it must hold the hex private key on one line")
    return text


def load_secrets(config: DaemonConfig, env: Mapping[str, str] | None = None, *, required: bool = True) -> Secrets:
    """The private key (environment first, then the key file) and API credentials from the environment.

    Every value is registered for redaction before anything can print it. The key is checked to parse
    (never echoed). `required=False` returns an empty Secrets when no key is configured (the local
    venue then generates a throwaway key)."""
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


def _risk(raw: Mapping[str, Any]) -> RiskLimits:
    d = RiskLimits()
    spread = raw.get("max_spread", "default")
    return RiskLimits(
        max_order_notional=_money(raw["max_order_notional"], "risk.max_order_notional")
        if "max_order_notional" in raw
        else d.max_order_notional,
        max_market_exposure=_money(raw["max_market_exposure"], "risk.max_market_exposure")
        if "max_market_exposure" in raw
        else d.max_market_exposure,
        max_total_exposure=_money(raw["max_total_exposure"], "risk.max_total_exposure")
        if "max_total_exposure" in raw
        else d.max_total_exposure,
        max_spread=d.max_spread
        if spread == "default"
        else (None if spread in ("", "none") else _money(spread, "risk.max_spread")),
        confirm_above=_money(raw["confirm_above"], "risk.confirm_above") if "confirm_above" in raw else d.confirm_above,
        max_orders=_int(raw.get("max_orders", d.max_orders), "risk.max_orders", 1, 1_000_000),
        window_ms=_int(raw.get("window_ms", d.window_ms), "risk.window_ms", 1, 86_400_000),
    )


def _url(value: Any, name: str, *, ws: bool = False) -> str:
    text = str(value).strip().rstrip("/")
    schemes = ("ws://", "wss://") if ws else ("http://", "https://")
    if not text.startswith(schemes):
        raise ConfigError(f"{name} must start with {' or '.join(schemes)}, got {value!r}", field=name)
    return text
