"""`polyoms doctor`: is this setup able to trade, and if not, exactly what to change.

Two halves. `gather` asks the venue (through the same REST client the daemon uses) for the facts:
reachability and protocol version, the venue's clock, whether API credentials work, pUSD balance and
allowances under every signature type. Without working credentials it gets them through L1 (derives the
existing key; if there is none, creates it, as `polyoms run` does on first start) and goes on; it never
moves money or places an order. The `check_*` functions are pure: facts in, `Finding`s out, each with the
exact fix. `diagnose` runs both; the clock is injected so skew is testable. Every venue check is reported:
one that cannot run says so ("not checked: why") instead of being left out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from polyoms.core.clock import Clock, WallClock
from polyoms.core.enums import SignatureType
from polyoms.core.errors import ConfigError, PolyomsError
from polyoms.core.units import fmt_micro
from polyoms.ops.config import ENV_API_KEY, ENV_KEY_FILE, ENV_PRIVATE_KEY, DaemonConfig, Secrets, load_secrets
from polyoms.polymarket.client import ClientConfig, ClientHub, Wallet
from polyoms.polymarket.client.models import BalanceAllowance
from polyoms.polymarket.protocol import constants
from polyoms.venues.registry import VENUES, venue_kind

MAX_SKEW_S: Final = 5
"""L1/L2 timestamps are unix seconds; the venue's freshness window is UNCONFIRMED (doc §2.1), so more
than a few seconds of skew is worth fixing before it refuses a signature."""
VENUE_CHECKS: Final = ("venue", "clock", "api_credentials", "signature_type", "balance", "allowance")
COLLATERAL_ONRAMP: Final = "0x93070a847efEf7F70739046A929D47a521F5B8ee"
SPENDERS: Final = {
    constants.CTF_EXCHANGE_V2: "CTF Exchange V2",
    constants.NEG_RISK_CTF_EXCHANGE_V2: "NegRisk CTF Exchange V2",
    constants.NEG_RISK_ADAPTER: "NegRisk Adapter",
}


class Severity(StrEnum):
    OK = "ok"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    severity: Severity
    message: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.severity is Severity.OK


@dataclass(slots=True)
class Facts:
    """What the venue said (None: not asked, or the question failed)."""

    clob_url: str
    signer: str = ""
    maker: str = ""
    signature_type: SignatureType = SignatureType.EOA
    funder: str | None = None
    reachable: bool | None = None
    unreachable_reason: str = ""
    version: int | None = None
    local_time_s: int | None = None
    server_time_s: int | None = None
    creds_source: str = ""
    """"environment" / "derived" / "" (none)."""
    creds_error: str = ""
    """Why the credentials from the environment were refused."""
    l1: str = ""
    """Credentials obtained through L1 (none from the environment, or refused): "derived" / "created" / ""."""
    l1_error: str = ""
    balances: dict[int, BalanceAllowance] = field(default_factory=dict)
    """Collateral balance and allowances as the venue reports them for each signature type."""
    balance_error: str = ""


# --- pure checks ---------------------------------------------------------------------------------------------


def check_venue(f: Facts) -> list[Finding]:
    if not f.reachable:
        return [
            Finding(
                "venue",
                Severity.ERROR,
                f"the CLOB at {f.clob_url} cannot be reached: {f.unreachable_reason or 'no answer'}",
                f"check the network and [polymarket] clob_url (or POLYOMS_CLOB_URL); `curl {f.clob_url}/ok` "
                "must answer OK",
            )
        ]
    if f.version is not None and f.version != 2:
        return [
            Finding(
                "venue",
                Severity.ERROR,
                f"the CLOB at {f.clob_url} speaks order version {f.version}; polyoms signs version 2",
                "point clob_url at the CLOB V2 host https://clob.polymarket.com",
            )
        ]
    return [Finding("venue", Severity.OK, f"the CLOB at {f.clob_url} answers (order version {f.version})")]


def check_clock(f: Facts, max_skew_s: int = MAX_SKEW_S) -> list[Finding]:
    if f.server_time_s is None or f.local_time_s is None:
        return []
    skew = f.local_time_s - f.server_time_s
    if abs(skew) <= max_skew_s:
        return [Finding("clock", Severity.OK, f"clock skew {skew:+d} s")]
    direction = "ahead of" if skew > 0 else "behind"
    return [
        Finding(
            "clock",
            Severity.ERROR,
            f"this machine's clock is {abs(skew)} s {direction} the venue's: signed requests carry a timestamp "
            "and may be refused",
            "synchronise the clock: `sudo timedatectl set-ntp true` (or `sudo chronyc makestep`), then check "
            "`timedatectl` shows 'System clock synchronized: yes'",
        )
    ]


def check_signature_type(f: Facts) -> list[Finding]:
    st, funder, signer = f.signature_type, f.funder, f.signer
    if st is SignatureType.EOA and funder is not None and funder.lower() != signer.lower():
        return [
            Finding(
                "signature_type",
                Severity.ERROR,
                f"signature type 0 (EOA) trades the signer's own address {signer}, but a funder {funder} is set",
                f"if {funder} is your Polymarket wallet, set signature_type = 1 (proxy), 2 (Safe) or 3 (deposit "
                "wallet, accounts since 2026-05-04) to match it; otherwise remove `funder`",
            )
        ]
    if st is not SignatureType.EOA and funder is None:
        return [
            Finding(
                "signature_type",
                Severity.ERROR,
                f"signature type {int(st)} ({st.name}) signs for a wallet, but no funder is set",
                "set [polymarket] funder (or POLYOMS_FUNDER) to the wallet address holding your funds "
                "(polymarket.com, Settings: your wallet address)",
            )
        ]
    if st is not SignatureType.EOA and funder is not None and funder.lower() == signer.lower():
        return [
            Finding(
                "signature_type",
                Severity.ERROR,
                f"signature type {int(st)} ({st.name}) needs the wallet's address as funder, but funder is the "
                f"signer {signer} itself",
                "set funder to the proxy / Safe / deposit wallet address, or signature_type = 0 to trade from "
                "the key's own address",
            )
        ]
    mine = f.balances.get(int(st))
    if mine is not None and mine.balance == 0:
        elsewhere = [(t, b) for t, b in sorted(f.balances.items()) if t != int(st) and b.balance > 0]
        if elsewhere:
            t, b = elsewhere[0]
            other = SignatureType(t)
            wallet_hint = "" if other is SignatureType.EOA else " and funder to that wallet's address"
            return [
                Finding(
                    "signature_type",
                    Severity.ERROR,
                    f"no pUSD under signature type {int(st)} ({st.name}), but {fmt_micro(b.balance)} pUSD under "
                    f"type {t} ({other.name}): the signature type does not match the wallet holding the funds",
                    f"set [polymarket] signature_type = {t} (POLYOMS_SIGNATURE_TYPE={t}){wallet_hint}",
                )
            ]
    return [Finding("signature_type", Severity.OK, f"signature type {int(st)} ({st.name}), maker {f.maker}")]


def check_credentials(f: Facts) -> list[Finding]:
    via_l1 = {
        "derived": "derived from the key through L1",
        "created": "none existed for this signer and nonce: created through L1 (what `polyoms run` does on "
        "first start)",
    }.get(f.l1, "")
    out: list[Finding] = []
    if f.creds_source == "environment" and f.creds_error:
        then = f"; the checks below use credentials {via_l1}" if via_l1 else ""
        out.append(
            Finding(
                "api_credentials",
                Severity.ERROR,
                f"the API credentials from the environment are refused: {f.creds_error}{then}",
                f"unset {ENV_API_KEY}, POLYOMS_API_SECRET and POLYOMS_API_PASSPHRASE to derive them from the "
                "key at start, or create new ones (POST /auth/api-key) for this signer",
            )
        )
    elif f.creds_source == "environment":
        out.append(Finding("api_credentials", Severity.OK, "API credentials from the environment work"))
    elif via_l1:
        out.append(Finding("api_credentials", Severity.OK, f"API credentials {via_l1}"))
    if f.l1_error:
        out.append(
            Finding(
                "api_credentials",
                Severity.ERROR,
                f"no API key can be derived or created through L1 for signer {f.signer} (nonce as configured): "
                f"{f.l1_error}",
                "check the key and the clock; if you created the key with another nonce, set [polymarket] api_nonce",
            )
        )
    return out


def check_funds(f: Facts) -> list[Finding]:
    b = f.balances.get(int(f.signature_type))
    if f.balance_error or b is None:
        return [
            Finding(
                "balance",
                Severity.ERROR,
                f"the venue did not report a balance: {f.balance_error or 'no answer'}",
                "fix the API credentials first (see above)",
            ),
            *not_checked(["allowance"], "the venue did not report a balance"),
        ]
    out: list[Finding] = []
    if b.balance == 0:
        out.append(
            Finding(
                "balance",
                Severity.WARN,
                f"no pUSD in {f.maker}",
                f"deposit pUSD to {f.maker} (on polymarket.com, or wrap USDC with the CollateralOnramp "
                f"{COLLATERAL_ONRAMP}: wrap(asset, {f.maker}, amount))",
            )
        )
    else:
        out.append(Finding("balance", Severity.OK, f"{fmt_micro(b.balance)} pUSD in {f.maker}"))
    for spender, name in SPENDERS.items():
        allowance = _allowance_for(b.allowances, spender)
        if allowance is None:
            continue
        if allowance == 0 or allowance < b.balance:
            out.append(
                Finding(
                    "allowance",
                    Severity.ERROR,
                    f"pUSD allowance for the {name} ({spender}) is {fmt_micro(allowance)}: orders above it are "
                    "refused (not enough balance / allowance)",
                    f"from {f.maker} call pUSD {constants.PUSD} approve({spender}, 2^256-1) (a proxy or Safe: "
                    "polymarket.com 'Enable trading'), then GET /balance-allowance/update so the CLOB re-reads it",
                )
            )
    if len(out) == 1 and out[0].ok:
        out.append(Finding("allowance", Severity.OK, "pUSD approved for the exchanges and the neg-risk adapter"))
    return out


def not_checked(checks: list[str] | tuple[str, ...], why: str) -> list[Finding]:
    """A check that could not run is reported as such, never left out."""
    return [
        Finding(c, Severity.WARN, f"not checked: {why}", "fix the error(s) above, then run doctor again")
        for c in checks
    ]


def _allowance_for(allowances: Mapping[str, int], spender: str) -> int | None:
    for k, v in allowances.items():
        if k.lower() == spender.lower():
            return v
    return None


def check_state_dir(path: Path) -> list[Finding]:
    if not path.exists():
        return [Finding("state_dir", Severity.OK, f"state dir {path} will be created (mode 0700)")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [
            Finding(
                "state_dir",
                Severity.WARN,
                f"state dir {path} has mode {mode:04o}: others can read the journal and the control token",
                f"chmod 700 {path}",
            )
        ]
    return [Finding("state_dir", Severity.OK, f"state dir {path} (mode {mode:04o})")]


# --- gathering ------------------------------------------------------------------------------------------------


def key_findings(config: DaemonConfig, env: Mapping[str, str] | None = None) -> tuple[list[Finding], Secrets | None]:
    """The key and credentials as configured; a refused key file comes back with its chmod fix."""
    env = os.environ if env is None else env
    try:
        secrets = load_secrets(config, env, required=venue_kind(config.venue.kind).needs_key)
    except ConfigError as exc:
        fix = exc.message.split("Fix: ", 1)[1] if "Fix: " in exc.message else "see the message"
        return [Finding("key", Severity.ERROR, exc.message.split(" Fix: ")[0], fix)], None
    except PolyomsError as exc:
        return [
            Finding(
                "key",
                Severity.ERROR,
                exc.message,
                f"export {ENV_PRIVATE_KEY}=0x<64 hex digits>, or write the key to a file, chmod 600 it and set "
                f"{ENV_KEY_FILE} / [polymarket] key_file",
            )
        ], None
    if secrets.private_key is None:
        msg = "no key configured: the local venue uses its session key (<state_dir>/local/wallet.key)"
        return [Finding("key", Severity.OK, msg)], secrets
    return [Finding("key", Severity.OK, f"signing key from {secrets.key_source}")], secrets


async def gather(
    hub: ClientHub,
    wallet: Wallet,
    *,
    clock: Clock | None = None,
    creds_from_env: bool = False,
) -> Facts:
    """Ask the venue everything `check_*` needs (never moves money; creates the API key only if none exists)."""
    clock = clock or WallClock()
    client = hub.clob(wallet)
    f = Facts(
        clob_url=hub.config.clob_url,
        signer=wallet.address,
        maker=wallet.maker,
        signature_type=wallet.signature_type,
        funder=wallet.funder,
    )
    try:
        await client.ok()
        f.reachable = True
        f.version = await client.get_version()
    except PolyomsError as exc:
        f.reachable = False
        f.unreachable_reason = exc.message
        return f
    try:
        f.local_time_s = clock.now_ms() // 1000
        f.server_time_s = await client.server_time()
    except PolyomsError:
        f.server_time_s = None
    if creds_from_env and wallet.creds is not None:
        f.creds_source = "environment"
        try:
            await client.closed_only()
        except PolyomsError as exc:
            f.creds_error = exc.message
    if f.creds_source != "environment" or f.creds_error:
        # No working credentials: get them through L1 as the daemon would, so the funds checks still run.
        if f.creds_source != "environment":
            f.creds_source = "derived"
        try:
            await client.derive_api_key()
            f.l1 = "derived"
        except PolyomsError:
            try:
                await client.create_api_key()
                f.l1 = "created"
            except PolyomsError as exc:
                f.l1_error = exc.message
                f.balance_error = "no usable API credentials"
                return f
    for st in SignatureType:
        try:
            f.balances[int(st)] = await client.balance_allowance("COLLATERAL", signature_type=int(st))
        except PolyomsError as exc:
            if st is wallet.signature_type:
                f.balance_error = exc.message
    return f


def evaluate(f: Facts) -> list[Finding]:
    out = check_venue(f)
    if not f.reachable:
        return out + not_checked(VENUE_CHECKS[1:], "the venue cannot be reached")
    out += check_clock(f) or not_checked(["clock"], "the venue did not report its time")
    out += check_credentials(f)
    if f.l1_error:
        return out + not_checked(["signature_type", "balance", "allowance"], "no usable API credentials")
    out += check_signature_type(f)
    out += check_funds(f)
    return out


async def diagnose(
    config: DaemonConfig,
    env: Mapping[str, str] | None = None,
    *,
    clock: Clock | None = None,
    hub: ClientHub | None = None,
) -> list[Finding]:
    """Every finding for this config: key, state dir, and (for a remote venue) the venue checks."""
    findings, secrets = key_findings(config, env)
    findings += check_state_dir(config.state_dir)
    entry = VENUES.entry(config.venue.kind)
    if not entry.item.remote:
        findings.append(Finding("venue", Severity.OK, f"venue {entry.name}: {entry.summary} (nothing to reach)"))
        return findings
    if secrets is None or secrets.private_key is None:
        return findings + not_checked(VENUE_CHECKS, "no signing key")
    static = check_signature_type_static(config, secrets)
    if static:
        others = [c for c in VENUE_CHECKS if c != "signature_type"]
        return findings + static + not_checked(others, "the signature type and funder do not match")
    pm = config.polymarket
    own_hub = hub is None
    hub = hub or ClientHub(
        ClientConfig(clob_url=pm.clob_url, gamma_url=pm.gamma_url, data_url=pm.data_url, chain_id=pm.chain_id)
    )
    try:
        wallet = Wallet.from_key(
            secrets.private_key,
            signature_type=pm.signature_type,
            funder=pm.funder,
            creds=secrets.api_creds,
            nonce=pm.api_nonce,
            name="doctor",
        )
        facts = await gather(hub, wallet, clock=clock, creds_from_env=secrets.api_creds is not None)
    finally:
        if own_hub:
            await hub.close()
    return findings + evaluate(facts)


def check_signature_type_static(config: DaemonConfig, secrets: Secrets) -> list[Finding]:
    """The signature type against the funder before asking anything (a Wallet would refuse to exist)."""
    assert secrets.private_key is not None
    from polyoms.polymarket.protocol.keys import Signer

    signer = Signer(secrets.private_key).address
    pm = config.polymarket
    f = Facts(clob_url=pm.clob_url, signer=signer, signature_type=pm.signature_type, funder=pm.funder)
    found = check_signature_type(f)
    return [x for x in found if not x.ok]
