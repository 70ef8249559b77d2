"""Secrets never appear in logs or exceptions, on success and error paths alike (canary values)."""

from __future__ import annotations

import asyncio
import base64
import logging
import traceback

import pytest
from aiohttp import web

from polyoms.core.errors import PolyomsError
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.polymarket.client import RetryPolicy, Timeouts, Wallet
from polyoms.polymarket.client.redact import REDACTED, get_logger, redact, safe_headers
from polyoms.polymarket.protocol.auth import POLY_PASSPHRASE, POLY_SIGNATURE, ApiCreds
from tests.client.conftest import FakeVenue, fake_hub, faults, fund, hub_for, market, run

CANARY_KEY = "0x" + "c0ffee00" * 8
CANARY_SECRET = base64.urlsafe_b64encode(b"CANARY-SECRET-0123456789abcdefgh").decode()
CANARY_PASSPHRASE = "canary-passphrase-5f3c9a0b"
CANARY_SECRET_2 = base64.urlsafe_b64encode(b"CANARY-SECRET-2-0123456789abcdef").decode()
CANARY_PASSPHRASE_2 = "canary-passphrase-second-77"


def _texts(errors: list[BaseException]) -> str:
    parts = []
    for exc in errors:
        parts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        if isinstance(exc, PolyomsError):
            parts += [repr(exc.context), str(exc.venue_message)]
    return "\n".join(parts)


def _assert_clean(text: str, canaries: list[str]) -> None:
    for canary in canaries:
        assert canary not in text, f"secret leaked: {canary[:6]}…"
        assert canary.lower() not in text.lower() or len(canary) < 8


def test_canaries_never_leak_even_when_the_venue_echoes_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    issued = [CANARY_SECRET]

    async def echo(request: web.Request) -> web.StreamResponse:
        # A hostile or buggy venue: echoes every header and the secrets it issued back in its error text.
        text = f"Unauthorized/Invalid api key {' '.join(issued)} {dict(request.headers)}"
        return web.json_response({"error": text}, status=401)

    async def echo_5xx(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": f"boom key={CANARY_KEY[2:]} {dict(request.headers)}"}, status=500)

    async def new_key(request: web.Request) -> web.StreamResponse:
        issued.extend((CANARY_SECRET_2, CANARY_PASSPHRASE_2))
        return web.json_response({"apiKey": "k-2", "secret": CANARY_SECRET_2, "passphrase": CANARY_PASSPHRASE_2})

    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.3)  # longer than the client's 0.1 s order timeout
        return web.json_response({})

    routes = {
        ("GET", "/data/orders"): echo,
        ("GET", "/balance-allowance"): echo,
        ("POST", "/order"): echo_5xx,
        ("POST", "/orders"): hang,
        ("DELETE", "/order"): echo_5xx,
        ("POST", "/auth/api-key"): new_key,
        ("GET", "/auth/derive-api-key"): echo,
    }
    errors: list[BaseException] = []
    creds = ApiCreds("00000000-0000-4000-8000-0000000000aa", CANARY_SECRET, CANARY_PASSPHRASE)

    async def body() -> FakeVenue:
        async with FakeVenue(routes) as venue:
            hub = fake_hub(venue.url, retry=RetryPolicy(attempts=2), timeouts=Timeouts(order_s=0.1))
            async with hub:
                wallet = Wallet.from_key(CANARY_KEY, creds=creds, name="canary")
                c = hub.clob(wallet)
                order = wallet.order_builder().limit("123", "BUY", "0.5", "10", tick="0.01")
                calls = [
                    c.open_orders(),
                    c.balance_allowance(),
                    c.post_order(order),
                    c.post_orders([order]),
                    c.cancel_order(order.order_id),
                    c.derive_api_key(),
                ]
                for call in calls:
                    try:
                        await call
                    except PolyomsError as exc:
                        errors.append(exc)
                await c.create_api_key()  # the venue hands out new secrets: from now on canaries too
                get_logger().info("a careless line: %s %s %r", CANARY_SECRET_2, CANARY_PASSPHRASE_2, c.creds)
                for call in (c.open_orders(), c.post_order(order)):
                    try:
                        await call
                    except PolyomsError as exc:
                        errors.append(exc)
                get_logger().debug("state %r %r %s %s", wallet, c, hub.stats(), c.wallet)
            return venue

    venue = run(body())
    assert len(errors) == 8  # every call above failed, each through a different path
    signatures = [h[POLY_SIGNATURE] for _, _, h, _ in venue.requests if POLY_SIGNATURE in h]
    passphrases = [h[POLY_PASSPHRASE] for _, _, h, _ in venue.requests if POLY_PASSPHRASE in h]
    assert len(signatures) >= 10 and set(passphrases) == {CANARY_PASSPHRASE, CANARY_PASSPHRASE_2}
    canaries = [CANARY_KEY, CANARY_KEY[2:], CANARY_SECRET, CANARY_PASSPHRASE, CANARY_SECRET_2, CANARY_PASSPHRASE_2]
    canaries += signatures
    assert "POST /order" in caplog.text and "retry" in caplog.text and REDACTED in caplog.text  # logs were written
    _assert_clean(caplog.text, canaries)
    _assert_clean("\n".join(r.getMessage() for r in caplog.records), canaries)
    _assert_clean(_texts(errors), canaries)


def test_sim_issued_credentials_stay_hidden_on_error_paths(sim: ThreadedSim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    m = market(sim)
    errors: list[BaseException] = []
    seen: dict[str, str] = {}

    async def body() -> None:
        async with hub_for(sim, retry=RetryPolicy(attempts=2, base_delay_s=0)) as hub:
            wallet = Wallet.from_key(CANARY_KEY, name="canary")
            c = hub.clob(wallet)
            creds = await c.create_or_derive_api_key()
            seen.update(secret=creds.secret, passphrase=creds.passphrase)
            fund(sim, wallet.address, "100")
            order = wallet.order_builder().limit(m.yes_token_id, "BUY", "0.5", "10", tick=m.tick)
            faults(sim, http_5xx_rate=1)
            for call in (c.post_order(order), c.open_orders(), c.heartbeat()):
                try:
                    await call
                except PolyomsError as exc:
                    errors.append(exc)
            faults(sim, http_5xx_rate=0)
            bad = ApiCreds(creds.api_key, base64.urlsafe_b64encode(b"x" * 32).decode(), creds.passphrase)
            c.creds = bad  # a wrong secret: the venue answers 401
            try:
                await c.open_orders()
            except PolyomsError as exc:
                errors.append(exc)
            get_logger().warning("creds %s / %r / wallet %r", creds, creds, c.wallet)

    run(body())
    assert len(errors) == 4
    _assert_clean(caplog.text, [CANARY_KEY, CANARY_KEY[2:], seen["secret"], seen["passphrase"]])
    _assert_clean(_texts(errors), [CANARY_KEY, CANARY_KEY[2:], seen["secret"], seen["passphrase"]])


def test_redaction_helpers() -> None:
    Wallet.from_key(CANARY_KEY)
    assert redact(f"key {CANARY_KEY.upper()[2:]} and 0x{CANARY_KEY[2:]}") == f"key {REDACTED} and {REDACTED}"
    assert redact("per-call value abcdefgh12", extra=["abcdefgh12"]) == f"per-call value {REDACTED}"
    assert redact("short ones stay: abc") == "short ones stay: abc"
    headers = {POLY_SIGNATURE: "sig-value", POLY_PASSPHRASE: "pp", "POLY_API_KEY": "id", "X": CANARY_KEY}
    shown = safe_headers(headers)
    assert shown == {POLY_SIGNATURE: REDACTED, POLY_PASSPHRASE: REDACTED, "POLY_API_KEY": "id", "X": REDACTED}
    w = Wallet.from_key(CANARY_KEY, creds=ApiCreds("id-1", CANARY_SECRET, CANARY_PASSPHRASE))
    for text in (repr(w), str(w), repr(w.creds), repr(w.signer)):
        assert CANARY_SECRET not in text and CANARY_PASSPHRASE not in text and CANARY_KEY[2:] not in text
