"""The optional compiled fast path of the market channel's hot path (`polyoms._speedups`, C).

Two functions of the pure-Python code have a compiled stand-in with exactly the same results and
errors; the Python code stays the reference and the fallback:

* `decode_price_change_frame(data)`: the current-format price_change frame that `decode_market_frame`
  hands to msgspec, decoded into the same `PriceChange`, or None for anything the C parser does not
  fully recognise (the caller then runs msgspec, as without the extension);
* `apply_price_change(bookset, event)`: `BookSet.apply_price_change`; the usual entry is applied in C,
  any other entry (odd spelling, off-grid price, unknown side, huge size, a book subclass...) by the
  same Python code the pure path runs, before anything of it was changed.

`decode_market_frame` and `BookSet.apply_price_change` use them when they are set (module attributes
here, read on every call); nothing else changes for their callers. They are None when the extension
was not built (no compiler at install time: it is optional in setup.py), when it is stale (its ABI
number differs from `ABI`; rebuild with `pip install -e .`), when the event or book classes no longer
have the layout it was written for, or when the environment variable POLYOMS_NO_SPEEDUPS is set to
anything but "" or "0" at import. `disabled()` switches them off for a block (tests, benchmarks).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from polyoms.core.market_events import PriceChange, PriceLevelChange

if TYPE_CHECKING:
    from polyoms.core.book import BookSet

ABI: Final = 1
"""The extension's interface version this Python code expects (SPEEDUPS_ABI in _speedups.c)."""
DISABLE_ENV: Final = "POLYOMS_NO_SPEEDUPS"

DecodeFrame = Callable[[bytes | str], PriceChange | None]
ApplyPriceChange = Callable[["BookSet", PriceChange], None]


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


def enabled() -> bool:
    """Are the compiled functions in use (both of them)?"""
    import polyoms.core.book  # noqa: F401  (binds the book classes on first import)

    return decode_price_change_frame is not None and apply_price_change is not None


@contextmanager
def disabled() -> Iterator[None]:
    """The pure-Python path inside the block (not thread-safe: it switches module attributes)."""
    global decode_price_change_frame, apply_price_change
    saved = decode_price_change_frame, apply_price_change
    decode_price_change_frame = apply_price_change = None
    try:
        yield
    finally:
        decode_price_change_frame, apply_price_change = saved
