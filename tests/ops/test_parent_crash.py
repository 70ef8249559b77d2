"""Parent orders survive `kill -9` of the daemon: a real `polyoms run` process, killed by SIGKILL while
two icebergs work (a tranche of each resting, partly filled), is started again on the same state dir
and the same exchange (run separately: `ThreadedSim` in this process, the daemon's "polymarket" venue
pointed at it). The exchange goes on meanwhile (more of each tranche fills while the daemon is down).

After the restart, over the control API: the iceberg with `on_restart=resume` cancels its old tranche
and works what is left to the end; the other (the daemon's default, engine.parents_on_restart =
"interrupt") has its tranche cancelled and ends CANCELLED, `interrupted`, with what filled. Both
answer (no 404), a new parent gets a new id, and every number equals what the OMS's fill records
(recovered from the journal after a graceful stop) attribute to the parent's children. The journal's
files are 0600."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from polyoms.core.units import MICRO, fmt_micro
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.oms.fills import FillTier
from polyoms.oms.journal_recovery import recover
from polyoms.ops.daemon import read_endpoint
from polyoms.polymarket.client import Wallet
from tests.ops.daemon_helpers import FAST_SETTLEMENT, KEY_OTHER, Counterparty, fund

TIMEOUT_S = 20.0


def wait_for(
    what: str, predicate: Callable[[], Any], timeout_s: float = TIMEOUT_S, show: Callable[[], Any] = str
) -> Any:
    """Poll `predicate` until it returns something true (returned); `show()` says what was seen instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {show()}")
        time.sleep(0.05)


class Daemon:
    """`polyoms run` as a child process, and its control API."""

    def __init__(self, state_dir: Path, config: Path) -> None:
        self.state_dir = state_dir
        for name in ("control.url", "control.token"):  # a killed daemon leaves its endpoint behind
            (state_dir / name).unlink(missing_ok=True)
        env = {**os.environ, "POLYOMS_STATE_DIR": str(state_dir), "POLYOMS_PRIVATE_KEY": KEY_OTHER}
        self.log = (state_dir / "daemon.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "polyoms.cli.main", "run", "--config", str(config)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        ep = wait_for("the control API", lambda: self.proc.poll() is not None or read_endpoint(state_dir), 60)
        assert self.proc.poll() is None, self.output()
        self.http = httpx.Client(base_url=ep.url, headers={"Authorization": f"Bearer {ep.token}"}, timeout=10)

    def output(self) -> str:
        return (self.state_dir / "daemon.log").read_text(errors="replace")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, path, json=body)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def parent(self, pid: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/orders/{pid}")  # type: ignore[no-any-return]

    def iceberg(self, token: str, size: str, price: str, **params: str) -> str:
        params = {"display": "10", "variance_bps": "0", "pause_min_ms": "100", "pause_max_ms": "200", **params}
        body = {"token_id": token, "side": "BUY", "price": price, "size": size, "algo": "iceberg"}
        return self.call("POST", "/v1/orders", {**body, "algo_params": params})["parent_id"]  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.http.close()
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL
        self.log.close()

    def stop(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, self.output()
        self.log.close()

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=31, settlement=FAST_SETTLEMENT)) as s:
        yield s


def shares(text: str) -> int:
    return int(Decimal(text) * MICRO)


def test_kill_9_during_icebergs_then_resume_and_interrupt_with_exact_fills(tmp_path: Path, sim: ThreadedSim) -> None:
    ws = sim.url.replace("http://", "ws://")
    config = tmp_path / "polyoms.toml"
    config.write_text(
        'venue = "polymarket"\n'
        f'[polymarket]\nclob_url = "{sim.url}"\ngamma_url = "{sim.url}"\ndata_url = "{sim.url}"\nws_url = "{ws}"\n'
        '[engine]\nparents_on_restart = "interrupt"\nheartbeat_s = 1.0\nmaintenance_s = 0.2\n'
        '[risk]\nmax_spread = "none"\n[log]\njson = true\nlevel = "info"\n'
    )
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    markets = [m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk]
    a_token, b_token = markets[0].yes_token_id, markets[1].yes_token_id
    fund(sim.url, Wallet.from_key(KEY_OTHER).address, "200")
    them = Counterparty(sim.url)
    fund(sim.url, them.address(), "0", {a_token: "500", b_token: "500"})

    def sell(token: str, price: str, size: str) -> None:
        assert them.post("SELL", token, price, size, order_type="FAK") == "matched"

    first = Daemon(state_dir, config)
    daemons = [first]
    try:
        resumed = first.iceberg(a_token, "30", "0.50", on_restart="resume")
        interrupted = first.iceberg(b_token, "20", "0.40")
        assert (resumed, interrupted) == ("iceberg-1", "iceberg-2")
        for pid in (resumed, interrupted):
            wait_for(f"{pid}'s first tranche", lambda pid=pid: len(first.parent(pid)["children"]) == 1)
        sell(a_token, "0.50", "4")
        sell(b_token, "0.40", "3")
        wait_for(
            "the fills", lambda: (first.parent(resumed)["filled"], first.parent(interrupted)["filled"]) == ("4", "3")
        )
        before = first.parent(resumed)
        assert before["state"] == "WORKING" and not before["interrupted"]
        first.kill()
        # Down: the exchange goes on, and the resting tranches fill a little more.
        sell(a_token, "0.50", "2")
        sell(b_token, "0.40", "1")

        second = Daemon(state_dir, config)
        daemons.append(second)
        b = wait_for("the interrupted parent to end", lambda: (v := second.parent(interrupted))["done"] and v)
        assert b["state"] == "CANCELLED" and b["interrupted"] is True and b["restarts"] == 1
        assert (
            b["filled"] == "4"
            and b["detail"]["remaining"] == "16"
            and "interrupted by a restart" in b["detail"]["reason"]
        )
        a = wait_for(
            "the resumed parent's new tranche",
            lambda: len((v := second.parent(resumed))["children"]) == 2 and v["state"] == "WORKING" and v,
            show=lambda: (second.parent(resumed), second.output()[-3000:]),
        )
        assert a["filled"] == "6" and not a["interrupted"] and a["restarts"] == 1
        orders = {o["order_id"]: o for o in second.call("GET", "/v1/orders")["orders"]}
        old_a, new_a = a["children"]
        assert old_a == before["children"][0] and orders[old_a]["state"] == "CANCELLED"
        # The new tranche works what is left, as the parent's child.
        assert orders[new_a]["actor"] == f"algo:{resumed}" and orders[new_a]["size"] == "10"
        assert orders[b["children"][0]]["state"] == "CANCELLED"
        # The new id is past both journaled ones.
        assert second.iceberg(b_token, "10", "0.30") == "iceberg-3"
        for _ in range(10):  # work the rest of the resumed iceberg, one tranche at a time
            wait_for("a live tranche", lambda: second.parent(resumed)["done"] or resting(second, resumed))
            v = second.parent(resumed)
            if v["done"]:
                break
            sell(a_token, "0.50", "10")  # takes the tranche (at most 10)
            wait_for("the fill", lambda v=v: shares(second.parent(resumed)["filled"]) > shares(v["filled"]))
        a = wait_for("the resumed parent to end", lambda: (v := second.parent(resumed))["done"] and v)
        assert a["state"] == "DONE" and a["filled"] == "30" and not a["interrupted"]
        final = {pid: second.parent(pid) for pid in (resumed, interrupted)}
        second.stop()
    finally:
        for d in daemons:
            d.ensure_dead()

    # What the OMS's fill records attribute to each parent's children, from the journal.
    (path,) = state_dir.glob("polymarket-*/journal.sqlite")
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in path.parent.iterdir()}
    assert all(mode == 0o600 for mode in modes.values()), modes
    state = recover(path, attach=False)
    for pid, view in final.items():
        children = [o for o in state.orders.values() if o.actor == f"algo:{pid}"]
        assert sorted(o.order_id for o in children) == sorted(view["children"])
        fills = [f for o in children for f in state.fills_of(o.order_id) if f.tier is not FillTier.VOIDED]
        assert fmt_micro(sum(f.size for f in fills)) == view["filled"]
        assert fmt_micro(sum(f.cash for f in fills)) == view["detail"]["notional"]
        assert fmt_micro(sum(f.fee for f in fills)) == view["detail"]["fees"]
        for o in children:  # each child agrees with the exchange
            x = sim.service.exchange.get_order(o.order_id)
            assert x is not None and o.filled == x.size_matched
    assert shares(final[resumed]["filled"]) == 30 * MICRO and shares(final[interrupted]["filled"]) == 4 * MICRO


def resting(d: Daemon, pid: str) -> bool:
    """A child of the parent rests at the venue (as the daemon knows it)."""
    states = [d.call("GET", f"/v1/orders/{c}")["state"] for c in d.parent(pid)["children"]]
    return any(s in ("LIVE", "PARTIALLY_FILLED") for s in states)
