"""Type stub of the optional C extension (src/polyoms/_speedups.c); use it through polyoms.core.speedups."""

from collections.abc import Callable
from typing import Any, Final

ABI: Final[int]

def decode_price_change_frame(data: object, /) -> Any: ...
def apply_price_change(bookset: Any, event: Any, /) -> None: ...
def bind_events(price_change: type, price_level_change: type, /) -> None: ...
def bind_book(
    book: type,
    bookset: type,
    grid: type,
    apply_message_python: Callable[[Any, Any], None],
    apply_entry_python: Callable[[Any, Any, bool, Any, Any], None],
    /,
) -> None: ...
def decode_user_frame(data: object, /) -> Any: ...
def bind_user_events(
    order_event: type,
    trade_event: type,
    maker_order_fill: type,
    sides: dict[str, Any],
    order_event_types: dict[str, Any],
    order_statuses: dict[str, Any],
    order_types: dict[str, Any],
    trade_statuses: dict[str, Any],
    trader_sides: dict[str, Any],
    default_order_event_type: Any,
    seconds_limit: int,
    micro: int,
    /,
) -> None: ...
def clear_caches() -> None: ...
