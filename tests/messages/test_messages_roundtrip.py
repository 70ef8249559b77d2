"""Encoders speak the venue's shapes: decode(encode(event)) == event for every event type; frames."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.market_events import (
    BestBidAsk,
    BookSnapshot,
    CryptoPricePoint,
    CryptoPrices,
    LastTradePrice,
    MarketEvent,
    MarketEventMessage,
    MarketResolved,
    NewMarket,
    TextFrame,
    TickSizeChange,
    UnknownEvent,
)
from polyoms.core.units import MICRO, TICK_SIZES
from polyoms.core.user_events import (
    MakerOrderFill,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
)
from polyoms.polymarket.protocol import rest
from polyoms.polymarket.protocol.messages import decode_market_frame, encode_market_event, encode_market_frame
from polyoms.polymarket.protocol.rtds import decode_rtds_frame, encode_rtds_event
from polyoms.polymarket.protocol.user_messages import (
    TradesPage,
    decode_trade,
    decode_trades_page,
    decode_user_frame,
    encode_trades_page,
    encode_user_event,
    encode_user_frame,
    trade_item,
)

from .fixtures import fixture_files, read

ids = st.from_regex(r"[0-9]{10,77}", fullmatch=True)
hex40 = st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
conditions = st.from_regex(r"0x[0-9a-f]{64}", fullmatch=True)
prices = st.integers(1, 9_999).map(lambda i: i * 100)
unit_prices = st.integers(0, MICRO)
sizes = st.integers(0, 10**14)
timestamps = st.integers(1_600_000_000_000, 2_000_000_000_000)
ticks = st.sampled_from(list(TICK_SIZES.values()))
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
levels = st.lists(st.tuples(prices, st.integers(1, 10**14)), max_size=6).map(tuple)

books = (
    st.builds(
        BookSnapshot,
        market=conditions,
        asset_id=ids,
        bids=levels,
        asks=levels,
        timestamp_ms=st.none() | timestamps,
        hash=hex40,
        min_order_size=st.none() | sizes,
        tick_size=st.none() | ticks,
        neg_risk=st.none() | st.booleans(),
        last_trade_price=st.none() | prices,
    )
    .filter(
        # Without tick_size the newer fields are not emitted (the older snapshot shape), so none is set.
        lambda b: (
            b.tick_size is not None or (b.min_order_size is None and b.neg_risk is None and b.last_trade_price is None)
        )
    )
    .map(
        # With tick_size the venue always sends every newer field ("" when empty); neg_risk is a bool.
        lambda b: msgspec.structs.replace(b, neg_risk=bool(b.neg_risk)) if b.tick_size is not None else b
    )
)

market_events = st.one_of(
    books,
    st.builds(
        LastTradePrice,
        market=conditions,
        asset_id=ids,
        price=prices,
        size=sizes,
        side=st.none() | st.sampled_from(Side),
        timestamp_ms=st.none() | timestamps,
        fee_rate_bps=st.none() | st.integers(0, 1000),
        transaction_hash=st.none() | hex40,
    ),
    st.builds(
        TickSizeChange,
        market=conditions,
        asset_id=ids,
        old_tick_size=ticks,
        new_tick_size=ticks,
        timestamp_ms=timestamps,
    ),
    st.builds(
        BestBidAsk,
        market=conditions,
        asset_id=ids,
        best_bid=st.none() | st.integers(0, 9_999).map(lambda i: i * 100),
        best_ask=st.none() | st.integers(1, 10_000).map(lambda i: i * 100),
        spread=st.none() | unit_prices,
        timestamp_ms=st.none() | timestamps,
    ),
    st.builds(
        NewMarket,
        id=st.integers(1, 10**7).map(str),
        market=conditions,
        question=text,
        slug=text,
        description=text,
        assets_ids=st.lists(ids, max_size=2).map(tuple),
        outcomes=st.lists(text, max_size=2).map(tuple),
        event_message=st.none() | st.builds(MarketEventMessage, id=st.integers(1, 10**6).map(str), title=text),
        timestamp_ms=st.none() | timestamps,
        tags=st.lists(text, max_size=3).map(tuple),
        condition_id=conditions,
        active=st.none() | st.booleans(),
        clob_token_ids=st.lists(ids, max_size=2).map(tuple),
        line=st.sampled_from(["", "2.5", "-110"]),
        order_price_min_tick_size=st.none() | ticks,
        taker_base_fee=st.none() | st.decimals(0, 1000, places=2),
        fees_enabled=st.none() | st.booleans(),
        fee_schedule=st.none() | st.just({"rate": 0.03, "exponent": 1, "takerOnly": True}),
    ),
    st.builds(
        MarketResolved,
        id=st.integers(1, 10**7).map(str),
        market=conditions,
        winning_asset_id=ids,
        winning_outcome=text,
        question=text,
        assets_ids=st.lists(ids, max_size=2).map(tuple),
        timestamp_ms=st.none() | timestamps,
        tags=st.lists(text, max_size=3).map(tuple),
    ),
)


@given(market_events)
@settings(max_examples=300, deadline=None)
def test_market_event_round_trip(event: MarketEvent) -> None:
    assert decode_market_frame(encode_market_event(event), strict=True) == [event]


@given(st.lists(market_events, max_size=4))
@settings(max_examples=60, deadline=None)
def test_market_frame_round_trip(events: list[MarketEvent]) -> None:
    assert decode_market_frame(encode_market_frame(events)) == events


makers = st.builds(
    MakerOrderFill,
    order_id=hex40,
    matched_amount=sizes,
    price=unit_prices,
    asset_id=ids,
    owner=text,
    maker_address=hex40,
    fee_rate_bps=st.none() | st.integers(0, 1000),
    outcome=st.sampled_from(["Yes", "No"]),
    outcome_index=st.none() | st.integers(0, 1),
    side=st.none() | st.sampled_from(Side),
)
trades = st.builds(
    TradeEvent,
    id=text,
    taker_order_id=hex40,
    market=conditions,
    asset_id=ids,
    side=st.sampled_from(Side),
    size=sizes,
    price=unit_prices,
    status=st.sampled_from(TradeStatus),
    maker_orders=st.lists(makers, max_size=3).map(tuple),
    fee_rate_bps=st.none() | st.integers(0, 1000),
    outcome=text,
    owner=text,
    trade_owner=text,
    maker_address=hex40,
    transaction_hash=hex40,
    bucket_index=st.none() | st.integers(0, 5),
    trader_side=st.none() | st.sampled_from(TraderSide),
    match_time=st.none() | st.integers(1_600_000_000, 2_000_000_000),
    last_update=st.none() | st.integers(1_600_000_000, 2_000_000_000),
    timestamp_ms=st.none() | timestamps,
    err_msg=text,
)
orders = st.builds(
    OrderEvent,
    type=st.sampled_from(OrderEventType),
    id=hex40,
    market=conditions,
    asset_id=ids,
    side=st.sampled_from(Side),
    price=unit_prices,
    original_size=sizes,
    size_matched=sizes,
    status=st.sampled_from(OrderStatus),
    owner=text,
    order_owner=text,
    outcome=text,
    associate_trades=st.lists(text, max_size=3).map(tuple),
    order_type=st.none() | st.sampled_from(OrderType),
    expiration=st.integers(0, 2**40),
    maker_address=hex40,
    created_at=st.none() | st.integers(1_600_000_000, 2_000_000_000),
    timestamp_ms=st.none() | timestamps,
)


@given(st.one_of(orders, trades))
@settings(max_examples=300, deadline=None)
def test_user_event_round_trip(event: OrderEvent | TradeEvent) -> None:
    assert decode_user_frame(encode_user_event(event)) == [event]


@given(st.lists(st.one_of(orders, trades), max_size=3))
@settings(max_examples=40, deadline=None)
def test_user_frame_round_trip(events: list[OrderEvent | TradeEvent]) -> None:
    assert decode_user_frame(encode_user_frame(events)) == events


@given(trades)
@settings(max_examples=100, deadline=None)
def test_data_trade_round_trip(trade: TradeEvent) -> None:
    as_item = msgspec.structs.replace(trade, timestamp_ms=None, trade_owner="")  # /data/trades has neither
    assert decode_trade(msgspec.json.encode(trade_item(as_item))) == as_item
    page = TradesPage((as_item,), "LTE=", 100, 1)
    assert decode_trades_page(encode_trades_page(page)) == page


@pytest.mark.parametrize("name", [n for n in fixture_files("ws") if n.startswith("user_")])
def test_recorded_user_events_round_trip(name: str) -> None:
    events = decode_user_frame(read("ws", name))
    assert decode_user_frame(encode_user_event(events[0])) == events


@pytest.mark.parametrize("name", [n for n in fixture_files("ws") if not n.startswith(("user_", "rtds_"))])
def test_recorded_market_events_round_trip(name: str) -> None:
    events = decode_market_frame(read("ws", name))
    assert decode_market_frame(encode_market_event(events[0])) == events


@given(
    st.builds(
        CryptoPrices,
        topic=st.sampled_from(["crypto_prices", "crypto_prices_chainlink"]),
        type=st.sampled_from(["update", "subscribe"]),
        symbol=st.sampled_from(["btcusdt", "eth/usd"]),
        timestamp_ms=timestamps,
        points=st.lists(
            st.builds(CryptoPricePoint, timestamp_ms=timestamps, value=st.decimals(0, 10**7, places=8)),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ).filter(lambda e: e.type == "subscribe" or len(e.points) == 1)
)
@settings(max_examples=100, deadline=None)
def test_rtds_round_trip(event: CryptoPrices) -> None:
    assert decode_rtds_frame(encode_rtds_event(event)) == [event]


@given(st.lists(st.builds(rest.PricePoint, t=st.integers(0, 2**40), price=unit_prices), max_size=5))
@settings(max_examples=50, deadline=None)
def test_rest_small_bodies_round_trip(points: list[rest.PricePoint]) -> None:
    assert list(rest.decode_prices_history(rest.encode_prices_history(points))) == points
    for p in points:
        assert rest.decode_midpoint(rest.encode_midpoint(p.price)) == p.price
        info = rest.LastTradeInfo(p.price, Side.BUY if p.t % 2 else None)
        assert rest.decode_last_trade_price(rest.encode_last_trade_price(info)) == info


@given(books)
@settings(max_examples=100, deadline=None)
def test_rest_book_round_trip(book: BookSnapshot) -> None:
    assert rest.decode_book(rest.encode_book_summary(book)) == book


# --- frames -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [b"PONG", "PONG", b"  PONG\n", b"", b"ping"])
def test_keepalives_are_skipped(frame: bytes | str) -> None:
    assert decode_market_frame(frame) == []
    assert decode_user_frame(frame) == []
    assert decode_rtds_frame(frame) == []


def test_other_text_frames_are_reported() -> None:
    assert decode_market_frame(b"INVALID OPERATION") == [TextFrame("INVALID OPERATION")]
    assert decode_user_frame("unauthorized") == [TextFrame("unauthorized")]


def test_unknown_event_types_are_values_not_errors() -> None:
    events = decode_market_frame(b'[{"event_type":"brand_new","x":1},{"no_type":true}]')
    assert events == [
        UnknownEvent("brand_new", {"event_type": "brand_new", "x": 1}),
        UnknownEvent("", {"no_type": True}),
    ]
    mixed = b"[" + read("ws", "book_2024-10.json") + b',{"event_type":"later"}]'
    assert [type(e) for e in decode_market_frame(mixed)] == [BookSnapshot, UnknownEvent]
    assert decode_user_frame(b'{"event_type":"balance"}') == [UnknownEvent("balance", {"event_type": "balance"})]


@pytest.mark.parametrize(
    "frame",
    [
        b'{"event_type":"book"',  # truncated JSON
        b'{"event_type":"last_trade_price","asset_id":"1"}',  # missing price/size
        b'{"event_type":"tick_size_change","asset_id":"1","old_tick_size":"0.01","new_tick_size":"0.02"}',
        b'{"event_type":"book","asset_id":"1","bids":[{"price":"2","size":"1"}]}',
        b"[1, 2]",
    ],
)
def test_malformed_known_events_raise_a_typed_error(frame: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        decode_market_frame(frame)


def test_malformed_user_events_raise_a_typed_error() -> None:
    bad_status = read("ws", "user_trade_matched_2024-09.json").replace(b'"MATCHED"', b'"EXPLODED"')
    with pytest.raises(MalformedMessageError):
        decode_user_frame(bad_status)
    bad_size = read("ws", "user_order_placement_2024-09.json").replace(
        b'"original_size": "5"', b'"original_size": "5.1234567"'
    )
    with pytest.raises(MalformedMessageError):
        decode_user_frame(bad_size)


def test_extra_keys_and_missing_optional_fields_are_tolerated() -> None:
    [e] = decode_market_frame(
        b'{"event_type":"last_trade_price","asset_id":"1","price":"0.5","size":"2","surprise":{"a":[1]}}'
    )
    assert e == LastTradePrice(market="", asset_id="1", price=500_000, size=2 * MICRO, side=None)
    [b] = decode_market_frame(b'{"event_type":"book","asset_id":"1","market":"m","bids":[],"asks":[],"newfield":1}')
    assert b == BookSnapshot(market="m", asset_id="1", bids=(), asks=())


def test_numbers_in_place_of_strings_are_read_exactly() -> None:
    [b] = decode_market_frame(
        b'{"event_type":"book","asset_id":"1","bids":[],"asks":[],"timestamp":1700000000000,'
        b'"min_order_size":5,"tick_size":0.001,"neg_risk":true,"last_trade_price":0.123}'
    )
    assert isinstance(b, BookSnapshot)
    assert (b.timestamp_ms, b.min_order_size, b.tick_size, b.last_trade_price) == (
        1700000000000,
        5 * MICRO,
        TICK_SIZES["0.001"],
        123_000,
    )
    [n] = decode_market_frame(b'{"event_type":"new_market","id":1,"market":"m","line":2.5,"taker_base_fee":0.1}')
    assert isinstance(n, NewMarket) and (n.id, n.line, n.taker_base_fee) == ("1", "2.5", Decimal("0.1"))
