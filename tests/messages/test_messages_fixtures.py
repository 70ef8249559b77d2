"""Every recorded venue message parses into typed events, with the values the files hold."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.market_events import (
    BestBidAsk,
    BookSnapshot,
    CryptoPrices,
    LastTradePrice,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
    UnknownEvent,
)
from polyoms.core.units import MICRO, tick_size
from polyoms.core.user_events import OrderEvent, OrderEventType, OrderStatus, TradeEvent, TraderSide, TradeStatus
from polyoms.polymarket.protocol import gamma, rest
from polyoms.polymarket.protocol.messages import decode_market_frame
from polyoms.polymarket.protocol.rtds import decode_rtds_frame
from polyoms.polymarket.protocol.user_messages import decode_trade, decode_user_frame

from .fixtures import fixture_files, read

M = MICRO
YES_2024 = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
NO_2024 = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
TRUMP_2024 = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"

# ws file -> (decoder, the one typed event class it must produce)
WS: dict[str, tuple[Callable[[bytes], list[Any]], type]] = {
    "best_bid_ask_docs_example.json": (decode_market_frame, BestBidAsk),
    "book_2024-10.json": (decode_market_frame, BookSnapshot),
    "last_trade_price_2024-08.json": (decode_market_frame, LastTradePrice),
    "market_resolved_docs_example.json": (decode_market_frame, MarketResolved),
    "new_market_docs_example.json": (decode_market_frame, NewMarket),
    "price_change_changes_array_2024-10.json": (decode_market_frame, PriceChange),
    "price_change_current_format_semisynthetic.json": (decode_market_frame, PriceChange),
    "price_change_legacy_2024-08.json": (decode_market_frame, PriceChange),
    "rtds_crypto_prices_subscribe.json": (decode_rtds_frame, CryptoPrices),
    "rtds_crypto_prices_update.json": (decode_rtds_frame, CryptoPrices),
    "tick_size_change_2025-02.json": (decode_market_frame, TickSizeChange),
    "user_order_cancellation_2024-09.json": (decode_user_frame, OrderEvent),
    "user_order_placement_2024-09.json": (decode_user_frame, OrderEvent),
    "user_trade_confirmed_2_makers_2025-11_edited.json": (decode_user_frame, TradeEvent),
    "user_trade_confirmed_maker_2025-11_edited.json": (decode_user_frame, TradeEvent),
    "user_trade_matched_2024-09.json": (decode_user_frame, TradeEvent),
    "user_trade_mined_3_makers_cross_outcome_2024-09.json": (decode_user_frame, TradeEvent),
}

REST: dict[str, Callable[[bytes], Any]] = {
    "book_2024-09.json": lambda raw: rest.decode_book(raw, verify_hash=True),
    "book_2024-10.json": lambda raw: rest.decode_book(raw, verify_hash=True),
    "book_btc_5m_2026-03.json": lambda raw: rest.decode_book(raw, verify_hash=True),
    "book_raw_2026-06.json": lambda raw: rest.decode_book(raw, verify_hash=True),
    "clob_market_2024.json": rest.decode_clob_market,
    "clob_market_closed_accepting_false_2026.json": rest.decode_clob_market,
    "clob_market_closed_accepting_true_2026.json": rest.decode_clob_market,
    "clob_markets_page_100_2024.json": rest.decode_clob_markets_page,
    "data_trade_confirmed_2024-09.json": decode_trade,
    "last_trade_price.json": rest.decode_last_trade_price,
    "midpoint.json": rest.decode_midpoint,
    "prices_history.json": rest.decode_prices_history,
}

OTHER: dict[tuple[str, str], Callable[[bytes], Any]] = {
    ("gamma", "event_crypto_updown_2026-06.json"): gamma.decode_gamma_events,
    ("gamma", "event_negrisk_2028_nominee.json"): gamma.decode_gamma_events,
    ("gamma", "market_btc_updown_5m_2026-03.json"): gamma.decode_gamma_market,
    ("gamma", "market_closed_accepting_false.json"): gamma.decode_gamma_market,
    ("gamma", "market_closed_accepting_true.json"): gamma.decode_gamma_market,
    ("gamma", "market_sports_moneyline.json"): gamma.decode_gamma_market,
    ("gamma", "markets_5_2026-06.json"): gamma.decode_gamma_markets,
    ("gamma", "public_search.json"): gamma.decode_gamma_search,
    ("gamma", "tags.json"): gamma.decode_gamma_tags,
    ("data-api", "activity_anonymised.json"): gamma.decode_data_activity,
    ("data-api", "positions_anonymised.json"): gamma.decode_data_positions,
    ("data-api", "trades_2026-03.json"): gamma.decode_data_trades,
}


def one(name: str) -> Any:
    decoder, cls = WS[name]
    events = decoder(read("ws", name))
    assert len(events) == 1
    assert type(events[0]) is cls
    return events[0]


# --- every file -------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["ws", "rest", "gamma", "data-api"])
def test_every_recorded_file_has_a_decoder(folder: str) -> None:
    known = {"ws": set(WS), "rest": set(REST)}.get(folder, {n for f, n in OTHER if f == folder})
    assert set(fixture_files(folder)) == known


@pytest.mark.parametrize("name", sorted(WS))
def test_ws_file_decodes_to_its_typed_event(name: str) -> None:
    event = one(name)
    assert not isinstance(event, UnknownEvent)
    if isinstance(event, PriceChange):
        event.validate()  # every lazily parsed value is well-formed


@pytest.mark.parametrize("name", sorted(REST))
def test_rest_file_decodes(name: str) -> None:
    assert REST[name](read("rest", name)) is not None


@pytest.mark.parametrize(("folder", "name"), sorted(OTHER))
def test_gamma_and_data_api_files_decode(folder: str, name: str) -> None:
    assert OTHER[folder, name](read(folder, name))


def test_frames_that_are_arrays_decode_each_item() -> None:
    raw = b"[" + read("ws", "book_2024-10.json") + b"," + read("ws", "last_trade_price_2024-08.json") + b"]"
    events = decode_market_frame(raw)
    assert [type(e) for e in events] == [BookSnapshot, LastTradePrice]


# --- market channel: values ---------------------------------------------------------------------------


def test_ws_book_levels_best_last() -> None:
    book = one("book_2024-10.json")
    assert book.asset_id == NO_2024 and book.market == TRUMP_2024
    assert (len(book.bids), len(book.asks)) == (76, 86)
    assert book.bids[-1] == (511_000, 1_304_720_000)  # best bid 0.511 x 1304.72, served last
    assert book.asks[-1] == (514_000, 20_230_870_000)  # best ask 0.514 x 20230.87
    assert book.asks[0] == (999_000, 10_500_100 * M)
    assert book.timestamp_ms == 1728799418260
    assert book.tick_size is None and book.hash == "655a38d4977427b086c25b985993691b753ed166"


def test_ws_book_hash_reproduces_with_the_2024_algorithm() -> None:
    [book] = decode_market_frame(read("ws", "book_2024-10.json"), verify_book_hash=True)
    assert isinstance(book, BookSnapshot) and book.hash_verified is True


def test_price_change_legacy() -> None:
    pc = one("price_change_legacy_2024-08.json")
    assert pc.market == TRUMP_2024 and pc.timestamp_ms == 1723967931411
    [c] = pc.changes
    assert (c.asset_id, c.side, c.price, c.size) == (NO_2024, Side.SELL, 514_000, 21_574_080_000)
    assert c.hash == "bf32b3746fff40c76c98021b7f3f07261169dd26"
    assert (c.best_bid, c.best_ask) == (None, None)


def test_price_change_changes_array_puts_the_hash_on_the_last_change() -> None:
    pc = one("price_change_changes_array_2024-10.json")
    assert [(c.side, c.price, c.size) for c in pc.changes] == [
        (Side.BUY, 600_000, 3300 * M),
        (Side.BUY, 500_000, 3400 * M),
        (Side.BUY, 700_000, 3400 * M),
    ]
    assert [c.hash for c in pc.changes] == ["", "", "bf32b3746fff40c76c98021b7f3f07261169dd26"]
    assert {c.asset_id for c in pc.changes} == {
        "52114319501245915516055106046884209969926127482827954674443846427813813222426"
    }


def test_price_change_current_format() -> None:
    pc = one("price_change_current_format_semisynthetic.json")
    assert len(pc.changes) == 3 and pc.timestamp_ms == 1729084877448
    first = pc.changes[0]
    assert (first.side, first.price, first.size) == (Side.BUY, 600_000, 3300 * M)
    assert (first.best_bid, first.best_ask) == (600_000, 700_000)
    assert [c.hash[:4] for c in pc.changes] == ["bf32", "af32", "cf32"]


def test_last_trade_price() -> None:
    e = one("last_trade_price_2024-08.json")
    assert (e.asset_id, e.price, e.size, e.side, e.fee_rate_bps) == (YES_2024, 491_000, 85_360_000, Side.SELL, 0)
    assert e.timestamp_ms == 1724564136087 and e.transaction_hash is None


def test_tick_size_change() -> None:
    e = one("tick_size_change_2025-02.json")
    assert (e.old_tick_size, e.new_tick_size) == (tick_size("0.01"), tick_size("0.001"))
    assert e.timestamp_ms == 1739068041853


def test_best_bid_ask() -> None:
    e = one("best_bid_ask_docs_example.json")
    assert (e.best_bid, e.best_ask, e.spread) == (730_000, 770_000, 40_000)


def test_new_market() -> None:
    e = one("new_market_docs_example.json")
    assert e.id == "1031769" and e.question.startswith("Will NVIDIA (NVDA) close above $240")
    assert e.outcomes == ("Yes", "No") and len(e.assets_ids) == 2 and e.clob_token_ids == e.assets_ids
    assert e.order_price_min_tick_size == tick_size("0.01") and e.active is True
    assert e.event_message is not None and e.event_message.ticker == "nvda-above-in-january-2026"
    assert e.tags == ("stocks",) and e.line == ""


def test_market_resolved() -> None:
    e = one("market_resolved_docs_example.json")
    assert e.winning_outcome == "Yes" and e.winning_asset_id == e.assets_ids[0]
    assert e.timestamp_ms == 1766790415550


# --- user channel -------------------------------------------------------------------------------------


def test_order_placement() -> None:
    e = one("user_order_placement_2024-09.json")
    assert (e.type, e.status, e.side, e.price, e.original_size, e.size_matched) == (
        OrderEventType.PLACEMENT,
        OrderStatus.LIVE,
        Side.BUY,
        513_000,
        5 * M,
        0,
    )
    assert e.order_type is OrderType.GTC and e.associate_trades == () and e.expiration == 0
    assert (e.created_at, e.timestamp_ms) == (1725842520, 1725842520990)


def test_order_cancellation() -> None:
    e = one("user_order_cancellation_2024-09.json")
    assert (e.type, e.status, e.size_matched) == (OrderEventType.CANCELLATION, OrderStatus.CANCELED, 5 * M)


def test_trade_matched_taker() -> None:
    e = one("user_trade_matched_2024-09.json")
    assert (e.status, e.trader_side, e.side, e.price, e.size) == (
        TradeStatus.MATCHED,
        TraderSide.TAKER,
        Side.BUY,
        520_000,
        5 * M,
    )
    [maker] = e.maker_orders
    assert (maker.matched_amount, maker.price, maker.side) == (5 * M, 520_000, None)  # 2024: no maker side
    assert e.match_time == 1725958681 and e.timestamp_ms == 1725958682125


def test_trade_mined_with_a_complementary_maker() -> None:
    e = one("user_trade_mined_3_makers_cross_outcome_2024-09.json")
    assert e.status is TradeStatus.MINED and e.size == 1_096_870_000
    assert sum(m.matched_amount for m in e.maker_orders) == e.size
    no_maker = e.maker_orders[0]
    assert (no_maker.asset_id, no_maker.outcome, no_maker.price) == (NO_2024, "No", 482_000)
    assert no_maker.price + e.price == MICRO  # BUY YES at 0.518 matched SELL... of NO at 1 - 0.518
    ours = e.fills_of(owner="3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe")
    assert [m.matched_amount for m in ours] == [5 * M]


def test_trade_confirmed_as_maker_timestamp_in_seconds_is_normalized() -> None:
    e = one("user_trade_confirmed_maker_2025-11_edited.json")
    assert e.status is TradeStatus.CONFIRMED and e.trader_side is TraderSide.MAKER
    assert e.timestamp_ms == 1762776436 * 1000  # sent in seconds here
    assert e.maker_orders[0].side is Side.BUY and e.maker_orders[0].price == 513_000


def test_trade_confirmed_two_makers() -> None:
    e = one("user_trade_confirmed_2_makers_2025-11_edited.json")
    assert [m.price for m in e.maker_orders] == [400_000, 350_000, 300_000]
    assert len(e.fills_of(maker_address="0xA3D82ED56F4C68D2328FB8C29E568BA2CAF7D7C8")) == 2


@pytest.mark.parametrize("status", ["MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"])
def test_trade_status_prefixes_normalize(status: str) -> None:
    base = read("ws", "user_trade_matched_2024-09.json").replace(
        b'"MATCHED"', b'"TRADE_STATUS_' + status.encode() + b'"'
    )
    [e] = decode_user_frame(base)
    assert isinstance(e, TradeEvent) and e.status is TradeStatus(status)


# --- RTDS ---------------------------------------------------------------------------------------------


def test_rtds_update_keeps_full_accuracy() -> None:
    e = one("rtds_crypto_prices_update.json")
    assert (e.topic, e.type, e.symbol, e.timestamp_ms) == ("crypto_prices", "update", "btcusdt", 1780730269142)
    assert e.points[0].value == Decimal("61035.86") and e.points[0].timestamp_ms == 1780730269000


def test_rtds_subscribe_backfill() -> None:
    e = one("rtds_crypto_prices_subscribe.json")
    assert [p.value for p in e.points] == [Decimal("61164.12"), Decimal("61161.07"), Decimal("61150.89")]


# --- REST -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bids", "asks", "best_bid", "best_ask"),
    [
        ("book_2024-09.json", 5, 7, (100_000, 125 * M), (140_000, 705 * M)),
        ("book_btc_5m_2026-03.json", 0, 104, None, (1_000, 385_409_390_000)),
        ("book_raw_2026-06.json", 35, 35, (490_000, 65 * M), (510_000, 72 * M)),
    ],
)
def test_rest_books(name: str, bids: int, asks: int, best_bid: Any, best_ask: Any) -> None:
    book = rest.decode_book(read("rest", name), verify_hash=True)
    assert (len(book.bids), len(book.asks)) == (bids, asks)
    assert (book.bids[-1] if book.bids else None, book.asks[-1]) == (best_bid, best_ask)
    assert book.hash_verified is True  # every recorded /book hash reproduces (see test_messages_hash)


def test_rest_book_newer_fields() -> None:
    book = rest.decode_book(read("rest", "book_btc_5m_2026-03.json"))
    assert (book.min_order_size, book.tick_size, book.neg_risk, book.last_trade_price) == (
        5 * M,
        tick_size("0.001"),
        False,
        999_000,
    )
    raw = rest.decode_book(read("rest", "book_raw_2026-06.json"))
    assert raw.last_trade_price is None  # served as ""


def test_rest_small_endpoints() -> None:
    assert rest.decode_midpoint(read("rest", "midpoint.json")) == 500  # "0.0005"
    assert rest.decode_last_trade_price(read("rest", "last_trade_price.json")) == rest.LastTradeInfo(1_000, Side.BUY)
    history = rest.decode_prices_history(read("rest", "prices_history.json"))
    assert [(p.t, p.price) for p in history] == [
        (1774165200, 420_000),
        (1774165500, 500_000),
        (1774168800, 650_000),
        (1774169100, 600_000),
    ]


def test_clob_market() -> None:
    m = rest.decode_clob_market(read("rest", "clob_market_2024.json"))
    assert m.condition_id == TRUMP_2024 and m.neg_risk and m.accepting_orders
    assert (m.tick_size, m.min_order_size) == (tick_size("0.001"), 5 * M)
    assert m.token_ids == (YES_2024, NO_2024) and [t.outcome for t in m.tokens] == ["Yes", "No"]
    assert m.tokens[0].price == Decimal("0.4865")
    assert m.rewards is not None and m.rewards.max_spread == Decimal("1.5")


def test_clob_markets_closed_but_accepting() -> None:
    accepting = rest.decode_clob_market(read("rest", "clob_market_closed_accepting_true_2026.json"))
    refusing = rest.decode_clob_market(read("rest", "clob_market_closed_accepting_false_2026.json"))
    assert (accepting.closed, accepting.accepting_orders, accepting.tick_size) == (True, True, tick_size("0.01"))
    assert (refusing.closed, refusing.accepting_orders) == (True, False)
    assert [t.winner for t in refusing.tokens] == [False, True]


def test_clob_markets_page() -> None:
    page = rest.decode_clob_markets_page(read("rest", "clob_markets_page_100_2024.json"))
    assert (len(page.data), page.next_cursor, page.limit, page.count) == (100, "MTAw", 100, 100)
    assert page.data[0].condition_id == "0x12a0cb60174abc437bf1178367c72d11f069e1a3add20b148fb0ab4279b772b2"
    assert {m.tick_size for m in page.data} == {tick_size("0.001"), tick_size("0.01")}
    assert (sum(m.closed for m in page.data), sum(m.accepting_orders for m in page.data)) == (98, 1)
    assert not any(m.neg_risk for m in page.data)  # despite the manifest, no neg-risk market on this page


def test_data_trade() -> None:
    t = decode_trade(read("rest", "data_trade_confirmed_2024-09.json"))
    assert (t.status, t.side, t.price, t.size, t.trader_side) == (
        TradeStatus.CONFIRMED,
        Side.BUY,
        489_000,
        5 * M,
        TraderSide.TAKER,
    )
    assert (t.match_time, t.last_update, t.timestamp_ms) == (1726043102, 1726043282, None)


def test_clob_market_info_compact_shape() -> None:
    body = (
        b'{"c":"0xbd31","t":[{"t":"71321","o":"Yes"},{"t":"52114","o":"No"}],"mts":0.01,"nr":true,'
        b'"fd":{"r":0.02,"e":2,"to":true},"mos":5,"itode":true}'
    )
    info = rest.decode_clob_market_info(body)
    assert (info.token_ids, info.tick_size, info.neg_risk, info.min_order_size) == (
        ("71321", "52114"),
        tick_size("0.01"),
        True,
        5 * M,
    )
    assert info.fd is not None and info.fd.r == Decimal("0.02") and info.itode


# --- Gamma / Data API -------------------------------------------------------------------------------


def test_gamma_market_json_string_fields() -> None:
    m = gamma.decode_gamma_market(read("gamma", "market_sports_moneyline.json"))
    assert m.outcome_names == ("FaZe", "illwill") and len(m.token_ids) == 2
    assert m.tick_size == tick_size("0.001")
    assert m.feeSchedule is not None and m.feeSchedule.rate == Decimal("0.03")


def test_gamma_neg_risk_event() -> None:
    [event] = gamma.decode_gamma_events(read("gamma", "event_negrisk_2028_nominee.json"))
    assert event.negRisk and len(event.markets) == 2
    assert all(m.negRisk and m.tick_size == tick_size("0.001") for m in event.markets)


def test_data_api_numbers_are_exact() -> None:
    [first, *_] = gamma.decode_data_trades(read("data-api", "trades_2026-03.json"))
    assert (first.size, first.price, first.side) == (Decimal("3.28888"), Decimal("0.9"), "BUY")
    positions = gamma.decode_data_positions(read("data-api", "positions_anonymised.json"))
    assert positions[0].size == Decimal("262.98") and positions[0].redeemable
