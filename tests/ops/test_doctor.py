"""`polyoms doctor` against the local exchange (venue = polymarket pointed at it): a healthy setup, then
one misconfiguration at a time, each found with its exact fix; the key file permission refusal."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from polyoms.cli.main import app
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import SignatureType
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.ops.config import DaemonConfig, PolymarketConfig, VenueConfig, load_config, load_secrets
from polyoms.ops.doctor import Finding, Severity, diagnose
from polyoms.polymarket.client import ClientConfig, ClientHub, Wallet
from polyoms.polymarket.client.ws_common import ws_url
from polyoms.venues.settings import KeyFilePermissionError
from tests.ops.daemon_helpers import KEY_OTHER, fund

PROXY = "0x00000000000000000000000000000000000Fa11e"


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=31)) as server:
        yield server


def config(sim: ThreadedSim, tmp_path: Path, **pm: object) -> DaemonConfig:
    base = PolymarketConfig(
        clob_url=sim.url, gamma_url=sim.url, data_url=sim.url, ws_url=ws_url(sim.url, "x").removesuffix("/ws/x")
    )
    return DaemonConfig(
        venue=VenueConfig("polymarket"), state_dir=tmp_path / "state", polymarket=dataclasses.replace(base, **pm)
    )


def run(cfg: DaemonConfig, env: dict[str, str], clock: VirtualClock | None = None) -> list[Finding]:
    return asyncio.run(diagnose(cfg, env, clock=clock))


def bad(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings if not f.ok}


def with_key(sim: ThreadedSim, key: str = KEY_OTHER) -> str:
    """Create the key's API key on the exchange (what `polyoms run` does on first start)."""

    async def go() -> None:
        async with ClientHub(ClientConfig(clob_url=sim.url)) as hub:
            await hub.clob(Wallet.from_key(key)).create_or_derive_api_key()

    asyncio.run(go())
    return Wallet.from_key(key).address


def test_healthy_setup_has_no_error(sim: ThreadedSim, tmp_path: Path) -> None:
    address = with_key(sim)
    fund(sim.url, address, "25")
    findings = run(config(sim, tmp_path), {"POLYOMS_PRIVATE_KEY": KEY_OTHER})
    assert bad(findings) == {}, bad(findings)
    checks = {f.check for f in findings}
    assert {"key", "venue", "clock", "api_credentials", "signature_type", "balance", "allowance"} <= checks


def test_wrong_signature_type_for_the_funder(sim: ThreadedSim, tmp_path: Path) -> None:
    key = "0x" + "11" * 32
    addr = with_key(sim, key)
    # The funds sit in a proxy wallet the venue knows as this key's (signature type 1); the config says EOA.
    resp = httpx.post(
        f"{sim.url}/_sim/fund",
        json={"address": PROXY, "pusd": "40", "tokens": {}, "owner": addr, "signature_type": 1},
    )
    assert resp.status_code == 200
    found = bad(run(config(sim, tmp_path), {"POLYOMS_PRIVATE_KEY": key}))
    f = found["signature_type"]
    assert f.severity is Severity.ERROR and "type 1 (POLY_PROXY)" in f.message
    assert "signature_type = 1" in f.fix and "funder" in f.fix
    # The static rules: a funder with type 0, a type without funder, the signer as funder.
    eoa_with_funder = bad(run(config(sim, tmp_path, funder=PROXY), {"POLYOMS_PRIVATE_KEY": key}))
    assert "signature_type = 1 (proxy), 2 (Safe) or 3" in eoa_with_funder["signature_type"].fix
    self_funded = bad(
        run(config(sim, tmp_path, signature_type=SignatureType.POLY_PROXY, funder=addr), {"POLYOMS_PRIVATE_KEY": key})
    )
    assert "funder is the signer" in self_funded["signature_type"].message


def test_zero_allowance(sim: ThreadedSim, tmp_path: Path) -> None:
    key = "0x" + "22" * 32
    address = with_key(sim, key)
    fund(sim.url, address, "30")
    sim.call(sim.service.exchange.set_allowance, address, 0)
    findings = run(config(sim, tmp_path), {"POLYOMS_PRIVATE_KEY": key})
    allowances = [f for f in findings if f.check == "allowance"]
    assert len(allowances) == 3 and all(f.severity is Severity.ERROR for f in allowances)  # one per spender
    fixes = " ".join(f.fix for f in allowances)
    for spender in ("0xE111180000d2663C0091e4f400237545B87B996B", "0xe2222d279d744050d28e00520010520000310F59"):
        assert f"approve({spender}, 2^256-1)" in fixes
    assert all("/balance-allowance/update" in f.fix for f in allowances)


def test_clock_skew_and_unreachable_venue(sim: ThreadedSim, tmp_path: Path) -> None:
    with_key(sim)
    ahead = VirtualClock(int(time.time() * 1000) + 120_000)
    found = bad(run(config(sim, tmp_path), {"POLYOMS_PRIVATE_KEY": KEY_OTHER}, clock=ahead))
    f = found["clock"]
    assert "120 s ahead of" in f.message or "119 s ahead of" in f.message
    assert "timedatectl set-ntp true" in f.fix
    down = config(sim, tmp_path, clob_url="http://127.0.0.1:9")
    found = bad(run(down, {"POLYOMS_PRIVATE_KEY": KEY_OTHER}))
    assert "cannot be reached" in found["venue"].message and "curl http://127.0.0.1:9/ok" in found["venue"].fix


def test_refused_api_credentials_and_missing_key(sim: ThreadedSim, tmp_path: Path) -> None:
    env = {
        "POLYOMS_PRIVATE_KEY": KEY_OTHER,
        "POLYOMS_API_KEY": "00000000-0000-0000-0000-00000000dead",
        "POLYOMS_API_SECRET": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "POLYOMS_API_PASSPHRASE": "not-it",
    }
    found = bad(run(config(sim, tmp_path), env))
    f = found["api_credentials"]
    assert f.severity is Severity.ERROR and "unset POLYOMS_API_KEY" in f.fix
    for value in ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-it", KEY_OTHER[2:]):
        assert all(value not in x.message + x.fix for x in found.values())
    missing = bad(run(config(sim, tmp_path), {}))
    assert "POLYOMS_PRIVATE_KEY" in missing["key"].fix


def test_key_file_permissions_are_checked(sim: ThreadedSim, tmp_path: Path) -> None:
    key_file = tmp_path / "key.hex"
    key_file.write_text(KEY_OTHER + "\n")
    key_file.chmod(0o644)
    cfg = config(sim, tmp_path, key_file=key_file)
    with pytest.raises(KeyFilePermissionError, match=f"chmod 600 {key_file}"):
        load_secrets(cfg, {})
    found = bad(run(cfg, {}))
    assert found["key"].fix == f"chmod 600 {key_file}" and KEY_OTHER[2:] not in found["key"].message
    toml = tmp_path / "polyoms.toml"
    toml.write_text(
        f'venue = "polymarket"\nstate_dir = "{tmp_path / "state"}"\n[polymarket]\nclob_url = "{sim.url}"\n'
        f'key_file = "{key_file}"\n'
    )
    env = {"POLYOMS_PRIVATE_KEY": "", "POLYOMS_KEY_FILE": "", "POLYOMS_STATE_DIR": "", "COLUMNS": "200"}
    refused = CliRunner().invoke(app, ["run", "--config", str(toml)], env=env)
    assert refused.exit_code == 2 and f"chmod 600 {key_file}" in " ".join(refused.stderr.split())
    doc = CliRunner().invoke(app, ["doctor", "--config", str(toml)], env=env)
    assert doc.exit_code == 1 and "FAIL" in doc.stdout and f"chmod 600 {key_file}" in doc.stdout
    key_file.chmod(0o600)
    assert load_secrets(load_config(toml, {}), {}).private_key == KEY_OTHER
    with_key(sim)
    fund(sim.url, Wallet.from_key(KEY_OTHER).address, "5")
    fine = CliRunner().invoke(app, ["doctor", "--config", str(toml)], env=env)
    assert fine.exit_code == 0, fine.stdout
    assert "0 error(s)" in fine.stdout
    assert os.stat(key_file).st_mode & 0o777 == 0o600


VENUE_CHECKS = ("venue", "clock", "api_credentials", "signature_type", "balance", "allowance")


def test_without_api_credentials_doctor_gets_them_through_l1_and_goes_on(sim: ThreadedSim, tmp_path: Path) -> None:
    # A fresh key: no API credentials in the environment and none on the venue yet (never run).
    key = "0x" + "33" * 32
    address = Wallet.from_key(key).address
    fund(sim.url, address, "12")
    findings = run(config(sim, tmp_path), {"POLYOMS_PRIVATE_KEY": key})
    assert bad(findings) == {}, bad(findings)
    by = {f.check: f for f in findings}
    assert set(VENUE_CHECKS) <= set(by)
    assert "L1" in by["api_credentials"].message
    assert by["balance"].message == f"12 pUSD in {address}"
    # The second time the key exists: derived, not created again.
    again = {f.check: f for f in run(config(sim, tmp_path), {"POLYOMS_PRIVATE_KEY": key})}
    assert "derived" in again["api_credentials"].message and again["balance"].ok and again["allowance"].ok


def test_refused_environment_credentials_do_not_stop_the_funds_checks(sim: ThreadedSim, tmp_path: Path) -> None:
    address = with_key(sim)
    fund(sim.url, address, "1")
    env = {
        "POLYOMS_PRIVATE_KEY": KEY_OTHER,
        "POLYOMS_API_KEY": "00000000-0000-0000-0000-00000000beef",
        "POLYOMS_API_SECRET": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "POLYOMS_API_PASSPHRASE": "not-it",
    }
    findings = run(config(sim, tmp_path), env)
    by = {f.check: f for f in findings}
    assert by["api_credentials"].severity is Severity.ERROR and "derived from the key" in by["api_credentials"].message
    assert by["balance"].ok and by["allowance"].ok and by["signature_type"].ok


def test_every_venue_check_is_reported_even_when_it_cannot_run(sim: ThreadedSim, tmp_path: Path) -> None:
    down = run(config(sim, tmp_path, clob_url="http://127.0.0.1:9"), {"POLYOMS_PRIVATE_KEY": KEY_OTHER})
    by = {f.check: f for f in down}
    assert set(VENUE_CHECKS) <= set(by)
    for check in VENUE_CHECKS[1:]:
        assert by[check].severity is Severity.WARN and "not checked" in by[check].message, by[check]
    static = run(config(sim, tmp_path, funder=PROXY), {"POLYOMS_PRIVATE_KEY": KEY_OTHER})
    by = {f.check: f for f in static}
    assert by["signature_type"].severity is Severity.ERROR
    assert all("not checked" in by[c].message for c in ("venue", "clock", "api_credentials", "balance", "allowance"))
    no_key = {f.check: f for f in run(config(sim, tmp_path), {})}
    assert no_key["key"].severity is Severity.ERROR and "not checked" in no_key["balance"].message
