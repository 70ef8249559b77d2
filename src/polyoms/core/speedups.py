"""The optional compiled fast path of the market and user channels' hot paths (`polyoms._speedups`, C).

Three functions of the pure-Python code have a compiled stand-in with exactly the same results and
errors; the Python code stays the reference and the fallback:

* `decode_price_change_frame(data)`: the current-format price_change frame that `decode_market_frame`
  hands to msgspec, decoded into the same `PriceChange`, or None for anything the C parser does not
  fully recognise (the caller then runs msgspec, as without the extension);
* `apply_price_change(bookset, event)`: `BookSet.apply_price_change`; the usual entry is applied in C,
  any other entry (odd spelling, off-grid price, unknown side, huge size, a book subclass...) by the
  same Python code the pure path runs, before anything of it was changed;
* `decode_user_frame(data)`: the fast path of `user_messages.decode_user_frame` (its `_fast`): the
  order/trade events of a user-channel frame in the common shape, or None for anything else (the
  caller then runs its Python paths, as without the extension).

`decode_market_frame`, `BookSet.apply_price_change` and `user_messages.decode_user_frame` use them when
they are set (module attributes here, read on every call); nothing else changes for their callers.
They are None when the extension was not built (no compiler at install time: it is optional in
setup.py), when it is stale (its ABI number differs from `ABI`; rebuild with `pip install -e .`), when
the event, wire or book classes no longer have the layout it was written for, or when the environment
variable POLYOMS_NO_SPEEDUPS is set to anything but "" or "0" at import. `disabled()` switches them
off for a block (tests, benchmarks).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import msgspec

from polyoms.core.enums import OrderType, Side
from polyoms.core.market_events import PriceChange, PriceLevelChange
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType, OrderStatus, TraderSide, TradeStatus

if TYPE_CHECKING:
    from polyoms.core.book import BookSet
    from polyoms.core.user_events import UserEvent

ABI: Final = 2
"""The extension's interface version this Python code expects (SPEEDUPS_ABI in _speedups.c)."""
DISABLE_ENV: Final = "POLYOMS_NO_SPEEDUPS"

DecodeFrame = Callable[[bytes | str], PriceChange | None]
ApplyPriceChange = Callable[["BookSet", PriceChange], None]
DecodeUserFrame = Callable[[bytes | str], "list[UserEvent] | None"]


def _layout_ok() -> bool:
    """The wire layout the C parser hard-codes (field order and names are checked by the module)."""
    pc, lc = PriceChange.__struct_config__, PriceLevelChange.__struct_config__
    return (
        pc.tag == "price_change"
        and pc.tag_field == "event_type"
        and not pc.forbid_unknown_fields
        and lc.tag is None
        and not lc.forbid_unknown_fields
        and PriceChange.__struct_defaults__ == ("",)
        and PriceLevelChange.__struct_defaults__ == ("", None, None)
    )


def _load() -> ModuleType | None:
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    try:
        from polyoms import _speedups
    except ImportError:
        return None
    if getattr(_speedups, "ABI", None) != ABI:
        warnings.warn(
            f"polyoms._speedups is stale (ABI {getattr(_speedups, 'ABI', None)}, expected {ABI}); "
            "using the pure-Python path. Rebuild it: pip install -e .",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    if not _layout_ok():
        warnings.warn("polyoms._speedups does not match PriceChange's layout; not used", RuntimeWarning, stacklevel=2)
        return None
    try:
        _speedups.bind_events(PriceChange, PriceLevelChange)
    except TypeError as exc:
        warnings.warn(f"polyoms._speedups not used: {exc}", RuntimeWarning, stacklevel=2)
        return None
    return _speedups


native: Final[ModuleType | None] = _load()
"""The extension module when it is in use, else None."""

decode_price_change_frame: DecodeFrame | None = None if native is None else native.decode_price_change_frame
apply_price_change: ApplyPriceChange | None = None  # set by bind_book (polyoms.core.book, at import)
decode_user_frame: DecodeUserFrame | None = None  # set by bind_user_frame (protocol.user_messages, at import)


def bind_book(
    book: type,
    bookset: type,
    grid: type,
    apply_message_python: Callable[[Any, PriceChange], None],
    apply_entry_python: Callable[[Any, PriceLevelChange, bool, str, Any], None],
) -> None:
    """Called once by polyoms.core.book: the classes the compiled apply reads and writes, and the Python
    code it hands unusual messages and entries to."""
    global apply_price_change
    if native is None:
        return
    try:
        native.bind_book(book, bookset, grid, apply_message_python, apply_entry_python)
    except TypeError as exc:
        warnings.warn(f"polyoms._speedups not used for the book: {exc}", RuntimeWarning, stacklevel=2)
        return
    apply_price_change = native.apply_price_change


_REQUIRED = msgspec.NODEFAULT
_S, _SI, _OPT_S = str, str | int | None, str | None
# The wire structs of user_messages' fast path as the C parser reads them: (name, type, default) of
# every field, in order. The C code maps each type the way msgspec decodes it and then converts it
# as _f_order / _f_trade do; a struct that differs from this is not what it was written for.
_USER_WIRE: Final[tuple[tuple[tuple[str, Any, Any], ...], ...]] = (
    (  # _FastOrder
        ("id", _S, _REQUIRED),
        ("asset_id", _S, _REQUIRED),
        ("side", _S, _REQUIRED),
        ("price", _S, _REQUIRED),
        ("original_size", _S, _REQUIRED),
        ("status", OrderStatus, _REQUIRED),
        ("type", OrderEventType, OrderEventType.PLACEMENT),
        ("market", _S, ""),
        ("size_matched", _S, "0"),
        ("owner", _S, ""),
        ("order_owner", _S, ""),
        ("outcome", _S, ""),
        ("associate_trades", tuple[str, ...] | None, None),
        ("order_type", OrderType | None, None),
        ("expiration", _SI, None),
        ("maker_address", _S, ""),
        ("created_at", _SI, None),
        ("timestamp", _SI, None),
    ),
    (  # _FastTrade (maker_orders: checked apart, it names the maker struct)
        ("id", _S, _REQUIRED),
        ("asset_id", _S, _REQUIRED),
        ("side", _S, _REQUIRED),
        ("size", _S, _REQUIRED),
        ("price", _S, _REQUIRED),
        ("status", TradeStatus, _REQUIRED),
        ("taker_order_id", _S, ""),
        ("market", _S, ""),
        ("maker_orders", None, None),
        ("fee_rate_bps", _SI, None),
        ("outcome", _S, ""),
        ("owner", _S, ""),
        ("trade_owner", _S, ""),
        ("maker_address", _S, ""),
        ("transaction_hash", _OPT_S, None),
        ("bucket_index", int | None, None),
        ("trader_side", TraderSide | None, None),
        ("match_time", _SI, None),
        ("matchtime", _SI, None),
        ("last_update", _SI, None),
        ("timestamp", _SI, None),
        ("err_msg", _OPT_S, None),
        ("type", _S, "TRADE"),
    ),
    (  # _FastMaker
        ("order_id", _S, _REQUIRED),
        ("matched_amount", _S, _REQUIRED),
        ("price", _S, _REQUIRED),
        ("asset_id", _S, ""),
        ("owner", _S, ""),
        ("maker_address", _S, ""),
        ("fee_rate_bps", _SI, None),
        ("outcome", _S, ""),
        ("outcome_index", int | None, None),
        ("side", _OPT_S, None),
    ),
)
_USER_TAGS: Final = ("order", "trade", None)


def _user_layout_ok(wire: tuple[type, type, type]) -> bool:
    """The wire structs are the ones the C parser reads (fields, types, defaults, tags, no renames)."""
    for cls, layout, tag in zip(wire, _USER_WIRE, _USER_TAGS, strict=True):
        config = cls.__struct_config__  # type: ignore[attr-defined]
        if (
            config.tag != tag
            or (tag is not None and config.tag_field != "event_type")
            or config.forbid_unknown_fields
            or cls.__struct_encode_fields__ != cls.__struct_fields__  # type: ignore[attr-defined]
        ):
            return False
        fields = msgspec.structs.fields(cls)
        seen = tuple((f.name, None if f.name == "maker_orders" else f.type, f.default) for f in fields)
        if seen != layout:
            return False
    maker_orders = next(f for f in msgspec.structs.fields(wire[1]) if f.name == "maker_orders")
    return bool(maker_orders.type == list[wire[2]] | None)  # type: ignore[valid-type]


def bind_user_frame(
    wire: tuple[type, type, type], events: tuple[type, type, type], sides: Mapping[str, Side], seconds_limit: int
) -> None:
    """Called once by user_messages: its fast path's wire structs (_FastOrder, _FastTrade, _FastMaker: the
    layout the C parser reads), the event classes to build (OrderEvent, TradeEvent, MakerOrderFill) and
    the lookups its conversions use."""
    global decode_user_frame
    if native is None:
        return
    if not _user_layout_ok(wire):
        warnings.warn(
            "polyoms._speedups does not match the user-channel wire layout; not used", RuntimeWarning, stacklevel=2
        )
        return
    try:
        native.bind_user_events(
            *events,
            dict(sides),
            {m.value: m for m in OrderEventType},
            {m.value: m for m in OrderStatus},
            {m.value: m for m in OrderType},
            {m.value: m for m in TradeStatus},
            {m.value: m for m in TraderSide},
            next(f.default for f in msgspec.structs.fields(wire[0]) if f.name == "type"),
            seconds_limit,
            MICRO,
        )
    except TypeError as exc:
        warnings.warn(f"polyoms._speedups not used for the user channel: {exc}", RuntimeWarning, stacklevel=2)
        return
    decode_user_frame = native.decode_user_frame


def enabled() -> bool:
    """Are the compiled functions of the market channel in use (both of them)? (The user channel's is
    bound when user_messages is imported: `decode_user_frame is not None`.)"""
    import polyoms.core.book  # noqa: F401  (binds the book classes on first import)

    return decode_price_change_frame is not None and apply_price_change is not None


@contextmanager
def disabled() -> Iterator[None]:
    """The pure-Python path inside the block (not thread-safe: it switches module attributes)."""
    global decode_price_change_frame, apply_price_change, decode_user_frame
    saved = decode_price_change_frame, apply_price_change, decode_user_frame
    decode_price_change_frame = apply_price_change = decode_user_frame = None
    try:
        yield
    finally:
        decode_price_change_frame, apply_price_change, decode_user_frame = saved
