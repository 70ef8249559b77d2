"""The OMS as a real process, for the crash test (test_crash_process.py): killed by SIGKILL at a seeded point.

    python tests/oms/crash_worker.py SIM_URL SEED JOURNAL KEY_US KEY_THEM YES NO CONDITION

Runs the engine with the Polymarket venue (REST + WebSocket user channel) against `polyoms sim` on
loopback, journaling to JOURNAL, and plays `plan(SEED)`: our orders (single and batched; GTC, some FAK/FOK), a scripted
counterparty crossing them (its own REST client, not through the OMS), cancels. It never exits on its
own: it dies by SIGKILL, sent by itself at the planned point (the windows in CHILD_WINDOWS) or by the
test (PARENT_WINDOWS); if the planned point never comes it kills itself at the end ("end").

Lines on stdout: `READY` (admission open), `ACT i` before action i, `KILL window detail` just before
killing itself. The plan is shared with the test, which imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from dataclasses import dataclass
from typing import Any

WINDOWS = (
    "mid_commit",  # between the journal's writes and its COMMIT (the k-th commit)
    "intent_committed",  # the k-th intent is durable, its POST not sent (maybe mid-batch)
    "post_unprocessed",  # the k-th POST reached the exchange, which never processes it
    "post_processed",  # the k-th POST was processed (order placed, maybe matched), answer never read
    "post_returned",  # the k-th POST's answer was read, not yet applied nor journaled
    "cancel_processed",  # the k-th cancel request was processed, answer never read
    "user_event",  # the k-th user event was received, not yet applied nor journaled
    "progress",  # a few ms after action k started: anywhere
)
CHILD_WINDOWS = frozenset({"mid_commit", "intent_committed", "post_returned", "user_event"})
PARENT_WINDOWS = frozenset(WINDOWS) - CHILD_WINDOWS

CASH = 100  # pUSD per wallet of ours; shares: SHARES of each outcome
SHARES = 60
# A user event is not guaranteed for every order (a refused one has none): stay below what comes.
MAX_USER_EVENT_K = 6


@dataclass(frozen=True)
class Plan:
    seed: int
    actions: tuple[tuple[Any, ...], ...]
    window: str
    k: int
    delay_ms: int = 0


def writer_of(p: Plan) -> str:
    """The journal's writer in this seed: the inline one, or the writer process in every other round of
    the windows (not mid_commit, whose hook sits inside the inline commit). A killed OMS leaves its writer
    process committing what it was handed; the restart waits for it."""
    if p.window != "mid_commit" and (p.seed // len(WINDOWS)) % 2 == 1:
        return "process"
    return "inline"


def random_order(rng: random.Random) -> tuple[int, str, str, str, str]:
    """(outcome index, side, price, size, order type): mostly resting orders, some taking only."""
    token, side, price = rng.randint(0, 1), rng.choice(("BUY", "SELL")), f"0.{rng.randint(42, 58)}"
    return token, side, price, str(rng.randint(5, 15)), rng.choices(("GTC", "FAK", "FOK"), (8, 1, 1))[0]


def plan(seed: int) -> Plan:
    """The seed's script and kill point; k is drawn among points the script is sure to reach."""
    rng = random.Random(seed)
    actions: list[tuple[Any, ...]] = [("submit", (random_order(rng),))]
    for _ in range(rng.randint(7, 18)):
        x = rng.random()
        if x < 0.38:
            n = 1 if rng.random() < 0.5 else rng.randint(2, 4)
            actions.append(("submit", tuple(random_order(rng) for _ in range(n))))
        elif x < 0.63:
            actions.append(("them", *random_order(rng)))
        elif x < 0.73:
            actions.append(("cancel", rng.randint(0, 30)))
        elif x < 0.78:
            actions.append(("cancel_all",))
        elif x < 0.92:
            actions.append(("sleep", rng.randint(5, 40)))
        else:
            actions.append(("drain",))
    window = WINDOWS[seed % len(WINDOWS)]
    if window == "cancel_processed":
        for _ in range(rng.randint(1, 3)):  # each sure to send a request; cancels by id may be skipped
            actions.insert(rng.randint(1, len(actions)), ("cancel_all",))
    intents = sum(len(a[1]) for a in actions if a[0] == "submit")
    posts = sum(1 for a in actions if a[0] == "submit")
    delay_ms = 0
    if window == "mid_commit":
        k = rng.randint(2, intents + 1)  # commit 1 is the bootstrap (wallet, balances): nothing to recover
    elif window == "intent_committed":
        k = rng.randint(1, intents)
    elif window.startswith("post_"):
        k = rng.randint(1, posts)
    elif window == "cancel_processed":
        k = rng.randint(1, sum(1 for a in actions if a[0] == "cancel_all"))  # DELETEs of any kind count
    elif window == "user_event":
        k = rng.randint(1, MAX_USER_EVENT_K)
    else:
        k, delay_ms = rng.randint(1, len(actions)), rng.randint(0, 30)
    return Plan(seed, tuple(actions), window, k, delay_ms)


async def submit_admitted(engine: Any, orders: list[Any]) -> list[str]:
    """Submit once admitted: on a loaded machine the user stream may gap for a moment (admission closes,
    nothing journaled); the script's counts of intents and POSTs must still hold."""
    from polyoms.oms.errors import TradingHaltedError

    for _ in range(500):
        try:
            return list(await engine.submit(orders, fee_rate_bps=0))
        except TradingHaltedError:
            await asyncio.sleep(0.02)
    raise AssertionError(f"admission stayed closed: {engine.admission_errors()}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def die(window: str, detail: str = "") -> None:
    say(f"KILL {window} {detail}".rstrip())
    os.kill(os.getpid(), signal.SIGKILL)


async def main(
    url: str, seed: int, journal: str, key_us: str, key_them: str, tokens: tuple[str, str], cid: str
) -> None:
    # Imported here: the test imports `plan` without paying for the whole client stack.
    from polyoms.core.clock import WallClock
    from polyoms.core.errors import PolyomsError
    from polyoms.core.units import MICRO
    from polyoms.oms.engine import Engine
    from polyoms.oms.journal import open_journal
    from polyoms.oms.oms_state import OmsState
    from polyoms.polymarket.client import ClientConfig, ClientHub, Wallet
    from polyoms.polymarket.client.ws_common import BackoffPolicy, ws_url
    from polyoms.polymarket.client.ws_user import UserStream, UserStreamConfig
    from polyoms.venues.polymarket import PolymarketVenue, follow_health
    from polyoms.venues.polymarket_orders import prepared

    p = plan(seed)
    rng = random.Random(seed ^ 0xC0FFEE)
    counts = {"commit": 0, "intent": 0, "post": 0, "user": 0}

    def hit(name: str, window: str) -> None:
        counts[name] += 1
        if p.window == window and counts[name] == p.k:
            die(window, str(p.k))

    config = ClientConfig(clob_url=url, gamma_url="http://127.0.0.1:9", data_url="http://127.0.0.1:9")
    async with ClientHub(config) as hub:
        us, them = Wallet.from_key(key_us, name="us"), Wallet.from_key(key_them, name="them")
        for w in (us, them):
            await hub.clob(w).create_or_derive_api_key()
        us, them = hub.clob(us).wallet, hub.clob(them).wallet
        assert us is not None and them is not None
        venue = PolymarketVenue(hub.clob(us))
        state = OmsState(WallClock())
        j = open_journal(journal, state, writer=writer_of(p))

        if p.window == "mid_commit":

            def before_commit() -> None:
                hit("commit", "mid_commit")

            j._before_commit = before_commit  # type: ignore[method-assign]
        elif p.window == "intent_committed":
            commit_intent = j.commit_intent

            def committed() -> None:
                commit_intent()
                hit("intent", "intent_committed")

            j.commit_intent = committed  # type: ignore[method-assign]

        state.add_wallet(us.address, [venue.owner])
        state.set_balance(us.address, cash=CASH * MICRO, positions={t: SHARES * MICRO for t in tokens})
        engine = Engine(state, venue, markets={t: cid for t in tokens}, unknown_grace_ms=60_000)
        stream = UserStream(
            hub.clob(us),
            config=UserStreamConfig(
                url=ws_url(url, "user"),
                ping_interval_s=1.0,
                stale_after_s=10.0,
                tick_s=0.05,
                backfill_retry_s=0.1,
                backoff=BackoffPolicy(base_s=0.05, max_s=0.3),
            ),
        )
        venue.follow(stream)
        follow_health(stream, engine.stream_gapped, engine.stream_recovered)
        builder, them_client, them_builder = us.order_builder(), hub.clob(them), them.order_builder()
        async with engine, stream:
            while not (stream.live and not engine.admission_errors()):
                await asyncio.sleep(0.01)
                await engine.drain()

            if p.window == "post_returned":
                submit = venue.submit

                async def submitted(orders: Any) -> Any:
                    out = await submit(orders)
                    hit("post", "post_returned")
                    return out

                venue.submit = submitted  # type: ignore[method-assign]
            elif p.window == "user_event":
                sink = engine._on_user_event

                def on_user_event(ev: Any) -> None:
                    sink(ev)  # queued for the engine: neither applied nor journaled yet
                    hit("user", "user_event")

                venue.set_user_sink(on_user_event)
            say("READY")

            ours: list[str] = []
            for i, action in enumerate(p.actions, 1):
                say(f"ACT {i}")
                kind = action[0]
                if kind == "submit":
                    orders = [
                        prepared(builder.limit(tokens[t], s, price, size, tick="0.01", order_type=ot))
                        for t, s, price, size, ot in action[1]
                    ]
                    ours += await submit_admitted(engine, orders)
                elif kind == "them":
                    _, t, side, price, size, _ = action
                    with contextlib.suppress(PolyomsError):  # a counterparty's refusal is not ours to test
                        await them_client.post_order(them_builder.limit(tokens[t], side, price, size, tick="0.01"))
                elif kind == "cancel":
                    await engine.cancel([ours[action[1] % len(ours)]])
                elif kind == "cancel_all":
                    await engine.cancel_all()
                elif kind == "sleep":
                    await asyncio.sleep(action[1] / 1000)
                else:
                    await engine.drain()
                if rng.random() < 0.4:
                    await engine.drain()
            await engine.drain()
            say("DONE")
            # A late point (a user event still to come, the test's timer) may yet arrive.
            await asyncio.sleep(2.0 if p.window in CHILD_WINDOWS else 5.0)
            die("end")


if __name__ == "__main__":
    url, seed, journal, key_us, key_them, yes, no, cid = sys.argv[1:9]
    asyncio.run(main(url, int(seed), journal, key_us, key_them, (yes, no), cid))
