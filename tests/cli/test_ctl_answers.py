"""The CLI and the control API tell the operator what happened (issue 13): `order add` waits for the
venue's answer and exits non-zero on a refusal; --kelly with --size is capped; operator numbers are plain
ASCII decimals; token ids are checked before anything is sent or logged; ids by unique prefix; order lists
and market searches name markets, outcomes and both sides' books; --watch prints a line per change in a
pipe; micro-price is one name; fills, cancels and refusals are logged. All over the daemon's real sockets."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from polyoms.cli.main import app
from polyoms.core.errors import InvalidAmountError
from polyoms.core.units import plain_micro, to_micro
from polyoms.ops.daemon import Daemon, DaemonThread, read_endpoint
from tests.ops.daemon_helpers import Counterparty, first_market, fund, start_daemon, wait_until

ENV = {"POLYOMS_CONTROL_URL": "", "POLYOMS_CONTROL_TOKEN": "", "POLYOMS_STATE_DIR": "", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def cli(d: Daemon, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--state-dir", str(d.state_dir)], env=ENV)


def api(d: Daemon, method: str, path: str, body: Any = None) -> httpx.Response:
    ep = read_endpoint(d.state_dir)
    assert ep is not None
    return httpx.request(
        method, f"{ep.url}/v1{path}", json=body, headers={"Authorization": f"Bearer {ep.token}"}, timeout=30
    )


def orders(d: Daemon) -> int:
    assert d.state is not None
    return len(d.state.orders)


def nth_market(d: Daemon, n: int) -> tuple[str, str]:
    """(YES, NO) of the n-th 0.01-tick market (0 is `first_market`'s): a book the other tests leave alone."""
    assert d.catalog is not None
    infos = [i for i in d.catalog if i.tick is not None and i.tick.text == "0.01" and not i.neg_risk]
    return infos[n].token_ids[0], infos[n].token_ids[1]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_refused_orders_exit_1_with_the_venues_reason(running: tuple[DaemonThread, Daemon]) -> None:
    _thread, d = running
    _, yes, _ = first_market(d)
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {yes: "100"})
    assert them.post("SELL", yes, "0.55", "8") == "live"
    base = ["order", "add", "--token-id", yes, "--side", "BUY"]

    cross = cli(d, *base, "--price", "0.56", "--size", "5", "--post-only")
    assert cross.exit_code == 1, cross.output
    assert "refused: REJECTED" in cross.stdout
    assert "the venue refused order 0x" in flat(cross.stderr) and "PostOnlyWouldCrossError" in cross.stderr

    fok = cli(d, *base, "--kind", "market", "--amount", "50", "--price", "0.56")  # the book holds 4.4 pUSD
    assert fok.exit_code == 1, fok.output
    assert "FokNotFilledError" in fok.stderr

    # The same answer over HTTP: wait_ms gives the outcome and the typed reason.
    body = {"token_id": yes, "side": "BUY", "price": "0.56", "size": "5", "post_only": True, "wait_ms": 10_000}
    r = api(d, "POST", "/orders", body)
    assert r.status_code == 200, r.text
    acc = r.json()
    assert acc["outcome"] == "refused" and acc["order"]["state"] == "REJECTED"
    assert acc["order"]["error"]["error"] == "PostOnlyWouldCrossError"

    # A limit that crosses: filled, with its fill and fee printed.
    took = cli(d, *base, "--price", "0.55", "--size", "5")
    assert took.exit_code == 0, took.output
    assert "filled: FILLED, filled 5/5 shares @ avg 0.55" in took.stdout
    assert re.search(r"fill \S+: BUY 5 @ 0\.55 \(TAKER\), fee [0-9.]+", took.stdout), took.stdout

    # Resting: exit 0; --no-wait: no outcome, exit 0.
    rest = cli(d, *base, "--price", "0.10", "--size", "5")
    assert rest.exit_code == 0 and "resting: LIVE, filled 0/5 shares" in rest.stdout, rest.output
    sent = cli(d, *base, "--price", "0.10", "--size", "5", "--no-wait", "--json")
    assert sent.exit_code == 0 and json.loads(sent.stdout)["outcome"] == "sent", sent.output
    bad = cli(d, *base, "--price", "0.10", "--size", "5", "--wait", "500")
    assert bad.exit_code == 2 and "--wait must be within" in bad.stderr


def test_kelly_is_capped_by_size(running: tuple[DaemonThread, Daemon]) -> None:
    _thread, d = running
    _, yes, _ = first_market(d)
    args = ["order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.20", "--kelly", "0.9"]
    capped = cli(d, *args, "--size", "10", "--json")
    assert capped.exit_code == 0, capped.output
    acc = json.loads(capped.stdout)
    assert acc["size"] == "10" and to_micro(acc["kelly_size"]) > 10_000_000  # Kelly wanted far more
    assert f"Kelly sized {acc['kelly_size']} shares, capped at --size 10" in acc["note"]
    assert d.state is not None
    assert d.state.order(acc["order_id"]).size == 10_000_000
    under = cli(d, *args, "--size", "100000")
    assert under.exit_code == 0 and "within the --size cap 100000" in under.stdout, under.output
    help_text = flat(CliRunner().invoke(app, ["order", "add", "--help"], env=ENV).stdout)
    assert "caps the size" in help_text


def test_operator_numbers_are_plain_ascii_decimals(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, yes, _ = first_market(d)
    before = orders(d)
    base = ["order", "add", "--token-id", yes, "--side", "BUY"]
    for args in (
        ["--price", "0.4", "--size", "1_0"],
        ["--price", "0.4", "--size", "١٠"],  # Arabic-Indic digits
        ["--price", "2e-1", "--size", "10"],
        ["--kind", "market", "--amount", "1_0"],
        ["--price", "0.4", "--size", "10", "--kelly", "5e-1"],
        ["--price", "0.05", "--size", "10", "--algo", "iceberg", "--param", "display=1_0"],
        ["--price", "0.05", "--size", "10", "--algo", "iceberg", "--param", "pause_min_ms=١٠"],
    ):
        r = cli(d, *base, *args)
        assert r.exit_code == 2, (args, r.output)
        assert "plain decimal" in r.stderr or "must be an integer" in r.stderr, (args, r.stderr)
    # The control API refuses them too (the daemon's gate, not only the CLI's).
    for field, value in (("size", "1_0"), ("size", "١٠"), ("price", "4e-1"), ("size", "NaN")):
        body = {"token_id": yes, "side": "BUY", "price": "0.4", "size": "10", field: value}
        r = api(d, "POST", "/orders", body)
        assert r.status_code == 400 and r.json()["error"] == "InvalidAmountError", (field, value, r.text)
    # An expiration on a non-GTD order is refused, not dropped.
    gtc = cli(d, *base, "--price", "0.4", "--size", "10", "--expiration", "4102444800")
    assert gtc.exit_code == 2 and "InvalidExpirationError" in gtc.stderr and "GTD" in gtc.stderr
    r = api(d, "POST", "/orders", {"token_id": yes, "side": "BUY", "price": "0.4", "size": "10", "expiration": 9})
    assert r.status_code == 400 and r.json()["error"] == "InvalidExpirationError"
    assert orders(d) == before
    # The venue's own spellings still parse where they come from the venue or the SDKs.
    assert to_micro("2e-2") == 20_000 and plain_micro(" 0.45 ") == 450_000
    for text in ("1_0", "١٠", "2e-2", "inf", "0x10"):
        with pytest.raises(InvalidAmountError):
            plain_micro(text)


def test_token_ids_are_checked_before_anything_is_sent_or_logged(
    running: tuple[DaemonThread, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    _, d = running
    before = orders(d)
    huge = "1" * 1_000_000
    with caplog.at_level(logging.DEBUG):
        r = api(d, "POST", "/orders", {"token_id": huge, "side": "BUY", "price": "0.4", "size": "10"})
        assert r.status_code == 400 and r.json()["error"] == "InputError"
        assert len(r.text) < 1_000 and "1000000 characters" in r.text
        for token in ("١٢٣", "12 34", "-5", str(2**256)):
            r = api(d, "POST", "/orders", {"token_id": token, "side": "BUY", "price": "0.4", "size": "10"})
            assert r.status_code == 400, (token, r.text)
    assert orders(d) == before
    assert all(len(rec.getMessage()) < 10_000 for rec in caplog.records)
    cli_r = cli(d, "order", "add", "--token-id", "9" * 5000, "--side", "BUY", "--price", "0.4", "--size", "10")
    assert cli_r.exit_code == 2 and "5000 characters" in cli_r.stderr and len(cli_r.stderr) < 1_000


def test_ids_by_unique_prefix(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    added = cli(d, "order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.11", "--size", "5", "--json")
    oid = json.loads(added.stdout)["order_id"]
    prefix = oid[:10]
    st = cli(d, "order", "status", prefix, "--json")
    assert st.exit_code == 0 and json.loads(st.stdout)["order_id"] == oid, st.output
    assert api(d, "GET", f"/orders/{oid[2:12].upper()}").json()["order_id"] == oid  # no 0x, any case
    too_short = cli(d, "order", "status", oid[:4])
    assert too_short.exit_code == 2 and "4+ characters" in too_short.stderr
    parents = []
    parent_args = ["order", "add", "--token-id", yes, "--side", "BUY", "--size", "10", "--price", "0.05"]
    for _ in range(2):
        r = cli(d, *parent_args, "--algo", "adaptive", "--param", "urgency=low", "--no-wait", "--json")
        assert r.exit_code == 0, r.output
        parents.append(json.loads(r.stdout)["parent_id"])
    ambiguous = cli(d, "order", "status", "adaptive")
    assert ambiguous.exit_code == 2 and "AmbiguousIdError" in ambiguous.stderr
    assert all(p in flat(ambiguous.stderr) for p in parents)
    assert api(d, "GET", "/orders/adaptive").status_code == 400
    cancelled = cli(d, "order", "cancel", prefix)
    assert cancelled.exit_code == 0 and f"cancel requested: {oid}" in cancelled.stdout, cancelled.output
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: state.order(oid).state.value == "CANCELLED")
    for pid in parents:
        assert cli(d, "order", "cancel", pid).exit_code == 0


def test_order_list_names_the_market_and_search_shows_both_books(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, _yes, no = first_market(d)
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {no: "50"})
    assert them.post("BUY", no, "0.31", "10") == "live"
    assert them.post("SELL", no, "0.72", "10") == "live"
    found = cli(d, "markets", "search", "bitcoin", "--json")
    (m,) = [m for m in json.loads(found.stdout)["markets"] if no in m["token_ids"]]
    i = m["token_ids"].index(no)
    assert m["bids"][i] is not None and m["asks"][i] is not None
    table = cli(d, "markets", "search", "bitcoin")
    (row,) = [line for line in table.stdout.splitlines() if no in line]
    assert m["bids"][i] in row and m["asks"][i] in row  # the NO side's own bid and ask
    added = cli(d, "order", "add", "--token-id", no, "--side", "BUY", "--price", "0.12", "--size", "5", "--json")
    oid = json.loads(added.stdout)["order_id"]
    listed = cli(d, "order", "list", "--open", "--json")
    (o,) = [o for o in json.loads(listed.stdout)["orders"] if o["order_id"] == oid]
    assert o["outcome"] == "No" and o["question"] == m["question"]
    text = cli(d, "order", "list", "--open")
    (line,) = [line for line in text.stdout.splitlines() if oid in line]
    assert "No" in line and m["question"][:20] in line
    assert cli(d, "order", "cancel", oid).exit_code == 0


def test_watch_prints_a_line_per_change_in_a_pipe(running: tuple[DaemonThread, Daemon]) -> None:
    _thread, d = running
    yes, _ = nth_market(d, 1)
    added = cli(d, "order", "add", "--token-id", yes, "--side", "BUY", "--price", "0.13", "--size", "10", "--json")
    oid = json.loads(added.stdout)["order_id"]
    cmd = [sys.executable, "-m", "polyoms.cli.main", "order", "status", oid[:12], "--watch"]
    env = {**os.environ, **ENV, "COLUMNS": "80"}
    lines: list[str] = []
    with subprocess.Popen(
        [*cmd, "--state-dir", str(d.state_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as watcher:
        stdout = watcher.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in stdout), daemon=True)
        reader.start()

        def printed(text: str) -> bool:
            deadline = time.monotonic() + 30
            while not any(text in line for line in lines) and time.monotonic() < deadline:
                time.sleep(0.05)
            return any(text in line for line in lines)

        try:
            assert printed(f"order {oid}: LIVE, filled 0/10"), lines  # watching: now change the order
            them = Counterparty(d.venue_url)
            fund(d.venue_url, them.address(), "0", {yes: "10"})
            assert them.post("SELL", yes, "0.13", "6") == "matched"
            assert printed("PARTIALLY_FILLED, filled 6/10"), lines
            assert cli(d, "order", "cancel", oid).exit_code == 0
            watcher.wait(timeout=60)  # not communicate(): the reader thread owns stdout
        finally:
            if watcher.poll() is None:
                watcher.kill()
        reader.join(timeout=10)
        err = watcher.stderr.read() if watcher.stderr is not None else ""
    assert watcher.returncode == 0, err
    assert lines[0].startswith(f"order {oid}: LIVE, filled 0/10") and "CANCELLED" in lines[-1], lines
    assert len(lines) == len(set(lines))  # one line per change, no repeats
    assert all("\x1b[" not in line and "\r" not in line for line in lines)  # no redraws in a pipe


def test_micro_price_is_one_name_and_messages_name_no_internals(running: tuple[DaemonThread, Daemon]) -> None:
    _thread, d = running
    _, yes, _ = first_market(d)
    base = ["order", "add", "--token-id", yes, "--side", "BUY", "--size", "10", "--price", "0.05", "--no-wait"]
    r = cli(d, *base, "--algo", "microprice", "--json")  # accepted as an alias
    assert r.exit_code == 0, r.output
    pid = json.loads(r.stdout)["parent_id"]
    view = json.loads(cli(d, "order", "status", pid, "--json").stdout)
    assert view["algo"] == "micro-price"
    listed = json.loads(cli(d, "order", "list", "--json").stdout)
    assert {p["algo"] for p in listed["parents"] if p["parent_id"] == pid} == {"micro-price"}
    assert cli(d, "order", "cancel", pid).exit_code == 0
    assert "micro-price" in flat(CliRunner().invoke(app, ["order", "add", "--help"], env=ENV).stdout)
    for extra, expected, internal in (
        (["--algo", "adaptive", "--param", "urgency=extreme"], "urgency must be LOW, MEDIUM or HIGH", "Params"),
        (["--kelly", "1.5"], "got 1.5", "3/2"),
    ):
        bad = cli(d, *base[:-1], *extra)
        assert bad.exit_code == 2, (extra, bad.output)
        assert expected in flat(bad.stderr) and internal not in bad.stderr, (extra, bad.stderr)


def test_fills_and_cancels_are_logged_at_info_refusals_at_warning(
    running: tuple[DaemonThread, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    thread, d = running
    _, yes = nth_market(d, 1)  # its NO token: a book nothing else rests on
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {yes: "20"})
    assert them.post("SELL", yes, "0.57", "5") == "live"
    base = ["order", "add", "--token-id", yes, "--side", "BUY"]
    with caplog.at_level(logging.INFO, logger="polyoms"):
        assert cli(d, *base, "--price", "0.57", "--size", "5").exit_code == 0  # fills
        assert them.post("SELL", yes, "0.60", "5") == "live"
        assert cli(d, *base, "--price", "0.61", "--size", "5", "--post-only").exit_code == 1  # would cross
        added = cli(d, *base, "--price", "0.14", "--size", "5", "--json")
        oid = json.loads(added.stdout)["order_id"]
        assert cli(d, "order", "cancel", oid).exit_code == 0
        assert d.state is not None
        state = d.state
        assert wait_until(thread, lambda: state.order(oid).state.value == "CANCELLED")
    records = [r for r in caplog.records if r.name == "polyoms.oms.engine"]
    fills = [r for r in records if r.getMessage().startswith("fill: BUY 5 @ 0.57")]
    assert fills and all(r.levelno == logging.INFO for r in fills)
    cancels = [r for r in records if r.getMessage().startswith("order cancelled") and oid == getattr(r, "order_id", "")]
    assert cancels and cancels[0].levelno == logging.INFO
    refusals = [r for r in records if r.getMessage().startswith("order rejected")]
    assert refusals and all(r.levelno == logging.WARNING for r in refusals)
