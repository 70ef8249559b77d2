"""Enumerations shared by every layer; values are the venue's wire values."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Side(IntEnum):
    """Signed as uint8 (0/1), sent on the wire as "BUY"/"SELL"."""

    BUY = 0
    SELL = 1

    @property
    def wire(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: str | int | Side) -> Side:
        from polyoms.core.errors import InvalidOrderError

        if isinstance(value, Side):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return cls(value)
        raise InvalidOrderError(f"side must be BUY or SELL, got {value!r}", field="side", value=value)

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    GTC = "GTC"
    GTD = "GTD"
    FOK = "FOK"
    FAK = "FAK"

    @property
    def is_marketable_only(self) -> bool:
        """FOK/FAK never rest on the book."""
        return self in (OrderType.FOK, OrderType.FAK)

    @classmethod
    def parse(cls, value: str | OrderType) -> OrderType:
        from polyoms.core.errors import InvalidOrderTypeError

        if isinstance(value, OrderType):
            return value
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            raise InvalidOrderTypeError(
                f"order type must be one of GTC, GTD, FOK, FAK, got {value!r}", value=value
            ) from None


class SignatureType(IntEnum):
    EOA = 0
    POLY_PROXY = 1
    POLY_GNOSIS_SAFE = 2
    POLY_1271 = 3

    @classmethod
    def parse(cls, value: str | int | SignatureType) -> SignatureType:
        from polyoms.core.errors import InvalidOrderError

        if isinstance(value, SignatureType):
            return value
        if isinstance(value, bool):
            raise InvalidOrderError(f"signature type must be 0-3, got {value!r}", value=value)
        try:
            if isinstance(value, str) and not value.strip().isdigit():
                return cls[value.strip().upper()]
            return cls(int(value))
        except (KeyError, ValueError):
            raise InvalidOrderError(
                f"signature type must be 0-3 (EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271), got {value!r}",
                value=value,
            ) from None
