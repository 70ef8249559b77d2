"""A running `polyoms sim` (REST on a free loopback port) for tests that speak HTTP to it."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest

from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.settlement import SettlementConfig

# Well-known development keys (Hardhat accounts 0-2); never funded anywhere real.
KEY_A = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_B = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY_C = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3d71b5a8be96d8b6"


# Trades settle in tens of milliseconds here (the venue takes seconds), so clients that wait for
# a settlement transaction, like the official SDK after a match, are not slowed down.
FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=20, confirmed_delay_ms=50, retry_delay_ms=50)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=7, settlement=FAST_SETTLEMENT)) as server:
        yield server


@pytest.fixture
def high_recursion_limit() -> Iterator[None]:
    """As in any process that imported py_ecc (the official SDK does): the decoder may then recurse
    until the C stack overflows, so the depth must be checked before decoding."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    yield
    sys.setrecursionlimit(before)


def fund(sim: ThreadedSim, address: str, pusd: str = "0", tokens: dict[str, str] | None = None) -> dict[str, object]:
    resp = httpx.post(f"{sim.url}/_sim/fund", json={"address": address, "pusd": pusd, "tokens": tokens or {}})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]
