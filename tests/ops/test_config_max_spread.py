"""[risk] max_spread over the control API on a quiet exchange (its books start empty): it refuses
marketable orders into an empty, one-sided or wide book, never a resting one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from polyoms.oms.risk import RiskLimits
from polyoms.ops.config import Secrets
from polyoms.ops.daemon import Daemon, DaemonThread
from tests.ops.daemon_helpers import (
    FAST_SETTLEMENT,
    KEY_DAEMON,
    Counterparty,
    first_market,
    fund,
    local_config,
    wait_until,
)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    cfg = local_config(tmp_path_factory.mktemp("spread"), risk=RiskLimits())  # the default guard, 0.1
    assert cfg.risk.max_spread == 100_000
    thread = DaemonThread(cfg, Secrets(KEY_DAEMON), settlement=FAST_SETTLEMENT)
    with thread as daemon:
        yield thread, daemon


def post(d: Daemon, **order: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {d.token}"}
    return httpx.post(f"{d.control_url}/v1/orders", headers=headers, json=order, timeout=10)


def test_resting_orders_pass_and_marketable_ones_are_refused(guarded: tuple[DaemonThread, Daemon]) -> None:
    thread, d = guarded
    _, yes, _ = first_market(d)
    assert d.venue is not None
    rest = post(d, token_id=yes, side="BUY", price="0.40", size="10")
    assert rest.status_code == 200, rest.text  # into an empty book
    fok = post(d, token_id=yes, side="BUY", price="0.40", size="10", order_type="FOK")
    assert fok.status_code == 409 and fok.json()["error"] == "SpreadTooWideError", fok.text
    # One ask at 0.60 against our bid at 0.40: a wide book. Crossing it is refused; resting in it is not.
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "0", {yes: "50"})
    assert them.post("SELL", yes, "0.60", "10") == "live"
    assert d.state is not None and d.desk is not None
    state, desk = d.state, d.desk
    assert wait_until(thread, lambda: (q := desk.quote(yes)) is not None and q.best_ask == 600_000)
    cross = post(d, token_id=yes, side="BUY", price="0.60", size="10")
    assert cross.status_code == 409 and cross.json()["error"] == "SpreadTooWideError", cross.text
    assert "wider than 0.1" in cross.json()["message"]
    inside = post(d, token_id=yes, side="BUY", price="0.45", size="10")
    assert inside.status_code == 200, inside.text
    assert len([o for o in state.orders.values() if o.side.name == "BUY"]) == 2
