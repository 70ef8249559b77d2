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
def clear_caches() -> None: ...
