"""The CLI against a running daemon: every command, bad input (exit 2, nothing changed), a missing
daemon and a wrong token (exit 3), the emergency stop (admission closed: exit 1)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from polyoms.cli.main import app
from polyoms.ops.daemon import Daemon, DaemonThread
from tests.ops.daemon_helpers import Counterparty, first_market, fund, start_daemon, wait_until

ENV = {"POLYOMS_CONTROL_URL": "", "POLYOMS_CONTROL_TOKEN": "", "POLYOMS_STATE_DIR": "", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def cli(d: Daemon | Path, *args: str) -> Result:
    state_dir = d if isinstance(d, Path) else d.state_dir
    return CliRunner().invoke(app, [*args, "--state-dir", str(state_dir)], env=ENV)


def orders(d: Daemon) -> int:
    assert d.state is not None
    return len(d.state.orders)


def test_order_lifecycle_through_the_cli(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    found = cli(d, "markets", "search", "bitcoin")
    assert found.exit_code == 0, found.output
    assert yes in found.stdout  # token ids are printed whole, never folded or cut
    added = cli(d, "order", "add", "--token-id", yes, "--side", "buy", "--price", "0.45", "--size", "20")
    assert added.exit_code == 0, added.output
    m = re.search(r"order (0x[0-9a-f]{64}): BUY 20 shares @ 0\.45 GTC", added.stdout)
    assert m, added.stdout
    oid = m.group(1)
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: state.order(oid).state.value == "LIVE")
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {yes: "100"})
    assert them.post("SELL", yes, "0.45", "8") == "matched"
    assert wait_until(thread, lambda: state.order(oid).filled == 8_000_000)

    listed = cli(d, "order", "list", "--open")
    assert listed.exit_code == 0 and oid in listed.stdout and "PARTIALLY_FILLED" in listed.stdout
    status = cli(d, "order", "status", oid)
    assert status.exit_code == 0, status.output
    out = status.stdout
    assert "audit trail" in out and "SUBMITTING" in out and "LIVE" in out and "PARTIALLY_FILLED" in out
    assert "fills" in out and "0.45" in out
    as_json = json.loads(cli(d, "order", "status", oid, "--json").stdout)
    assert as_json["filled"] == "8" and [h["to_state"] for h in as_json["history"]][:2] == ["SUBMITTING", "LIVE"]

    pos = cli(d, "positions")
    assert pos.exit_code == 0 and yes in pos.stdout and "available" in pos.stdout
    pos_json = json.loads(cli(d, "positions", "--json").stdout)
    (row,) = [p for p in pos_json["positions"] if p["token_id"] == yes]
    assert row["outcome"] == "Yes"
    assert wait_until(thread, lambda: state.ledger(pos_json["wallet"]).positions[yes].confirmed == 8_000_000)

    metrics = cli(d, "metrics")
    assert metrics.exit_code == 0 and "polyoms_" in metrics.stdout

    cancelled = cli(d, "order", "cancel", oid)
    assert cancelled.exit_code == 0 and f"cancel requested: {oid}" in cancelled.stdout
    assert wait_until(thread, lambda: state.order(oid).state.value == "CANCELLED")
    st = cli(d, "status")
    assert st.exit_code == 0 and "admission open" in st.stdout


def test_market_order_through_the_cli(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, _, no = first_market(d)
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "0", {no: "50"})
    assert them.post("SELL", no, "0.60", "50") == "live"
    r = cli(d, "order", "add", "--token-id", no, "--side", "BUY", "--kind", "market", "--amount", "6", "--json")
    assert r.exit_code == 0, r.output
    acc = json.loads(r.stdout)
    assert acc["order_type"] == "FOK" and acc["price"] == "0.6" and acc["max_spend"] == "6"  # fee included
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: state.order(acc["order_id"]).state.value == "FILLED")
    thin = cli(d, "order", "add", "--token-id", no, "--side", "BUY", "--kind", "market", "--amount", "5000")
    assert thin.exit_code == 1 and "FokNotFilledError" in thin.output


def test_bad_input_exits_2_and_changes_nothing(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, yes, _ = first_market(d)
    before = orders(d)
    base = ["order", "add", "--token-id", yes, "--side", "BUY"]
    cases = [
        ([*base, "--price", "abc", "--size", "10"], "price must be a plain decimal number"),
        ([*base, "--price", "0.4", "--size", "1.2345678"], "decimals"),
        ([*base, "--price", "1.2", "--size", "10"], "inside (0, 1)"),
        ([*base, "--price", "0.4", "--size", "-5"], "must be positive"),
        ([*base, "--price", "0.405", "--size", "10"], "tick"),
        (["order", "add", "--token-id", yes, "--side", "HOLD", "--price", "0.4", "--size", "10"], "BUY or SELL"),
        (["order", "add", "--token-id", "abc", "--side", "BUY", "--price", "0.4", "--size", "10"], "decimal"),
        (["order", "add", "--token-id", "999", "--side", "BUY", "--price", "0.4", "--size", "10"], "unknown token"),
        ([*base, "--price", "0.4", "--size", "10", "--kind", "stop"], "limit or market"),
        ([*base, "--price", "0.4", "--size", "10", "--order-type", "IOC"], "order type must be"),
        ([*base, "--price", "0.4", "--size", "10", "--param", "oops"], "KEY=VALUE"),
        ([*base, "--kind", "market", "--size", "10"], "--amount"),
        (["order", "status", "0x" + "ab" * 32], "unknown order"),
        (["order", "cancel", "0x" + "cd" * 32], "unknown order"),
        (["order", "cancel"], "give an order id"),
        (["markets", "search", "  "], "give some words"),
    ]
    for args, expected in cases:
        r = cli(d, *args)
        assert r.exit_code == 2, (args, r.output)
        assert "error:" in r.stderr and expected in " ".join(r.stderr.split()), (args, r.stderr)
    assert orders(d) == before


def test_no_daemon_or_wrong_token_exits_3(running: tuple[DaemonThread, Daemon], tmp_path: Path) -> None:
    _, d = running
    r = cli(tmp_path, "status")
    assert r.exit_code == 3 and "no running daemon found" in r.stderr and "polyoms run" in r.stderr
    bad = CliRunner().invoke(app, ["positions", "--url", d.control_url, "--token", "not-the-token"], env=ENV)
    assert bad.exit_code == 3 and "refused the control token" in bad.stderr
    gone = CliRunner().invoke(app, ["positions", "--url", "http://127.0.0.1:9", "--token", "x"], env=ENV)
    assert gone.exit_code == 3 and "cannot reach the daemon" in gone.stderr


def test_emergency_stop_and_resume(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    added = cli(d, "order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.1", "--size", "10", "--json")
    oid = json.loads(added.stdout)["order_id"]
    stop = cli(d, "stop", "--emergency", "--reason", "drill")
    assert stop.exit_code == 0 and "EMERGENCY STOP: admission closed" in stop.stdout
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: state.order(oid).state.value == "CANCELLED")
    refused = cli(d, "order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.1", "--size", "10")
    assert refused.exit_code == 1 and "kill switch" in refused.stderr
    st = cli(d, "status")
    assert "admission closed" in st.stdout
    resumed = cli(d, "resume")
    assert resumed.exit_code == 0 and "admission open" in resumed.stdout
    ok = cli(d, "order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.1", "--size", "10")
    assert ok.exit_code == 0, ok.output


def test_iceberg_parent_with_live_progress(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, yes, _ = first_market(d)
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "0", {yes: "40"})
    assert them.post("SELL", yes, "0.47", "20") == "live"
    args = ["order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.47", "--size", "20", "--algo", "iceberg"]
    params = ["--param", "display=10", "--param", "pause_min_ms=0", "--param", "pause_max_ms=0"]
    r = cli(d, *args, *params)  # follows the parent until it is done (live progress on stderr)
    assert r.exit_code == 0, r.output
    m = re.search(r"parent (\S+): iceberg BUY 20 of token", r.stdout)
    assert m, r.stdout
    pid = m.group(1)
    assert f"parent {pid}: DONE, filled 20/20" in r.stdout
    st = json.loads(cli(d, "order", "status", pid, "--json").stdout)
    assert st["state"] == "DONE" and st["filled"] == "20" and len(st["children"]) >= 2  # tranches of ~10
    assert st["detail"]["avg_price"] == "0.47"
    child = st["children"][0]
    trail = json.loads(cli(d, "order", "status", child, "--json").stdout)
    assert trail["actor"] == f"algo:{pid}" and trail["state"] == "FILLED"
    listed = cli(d, "order", "list")
    assert pid in listed.stdout and "iceberg" in listed.stdout


def test_parent_cancel_and_bad_algo_input(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    base = ["order", "add", "--token-id", yes, "--side", "BUY", "--size", "10"]
    r = cli(d, *base, "--price", "0.05", "--algo", "adaptive", "--param", "urgency=low", "--no-wait", "--json")
    assert r.exit_code == 0, r.output
    pid = json.loads(r.stdout)["parent_id"]
    assert json.loads(cli(d, "order", "status", pid, "--json").stdout)["state"] == "WORKING"
    c = cli(d, "order", "cancel", pid)
    assert c.exit_code == 0 and f"cancel requested: {pid}" in c.stdout
    assert d.parents is not None
    parents = d.parents
    assert wait_until(thread, lambda: parents.status(pid).done)
    assert parents.status(pid).state == "CANCELLED"
    before = orders(d)
    for extra, expected in (
        (["--price", "0.05", "--algo", "twap"], "algo must be one of"),
        (["--price", "0.05", "--algo", "iceberg", "--param", "colour=red"], "unknown iceberg parameter"),
        (["--price", "0.05", "--algo", "iceberg", "--param", "urgency=high"], "need limit="),
        (["--price", "0.05", "--algo", "adaptive", "--param", "urgency=extreme"], "urgency must be"),
        (["--price", "0.05", "--algo", "micro-price", "--param", "band_bps=x"], "must be an integer"),
        (["--algo", "iceberg"], "needs --price"),
    ):
        bad = cli(d, *base, *extra)
        assert bad.exit_code == 2, (extra, bad.output)
        assert expected in " ".join(bad.stderr.split()), (extra, bad.stderr)
    assert orders(d) == before
