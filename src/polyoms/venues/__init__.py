"""The Venue port and its adapters (architecture: "one code path, three venues")."""

from polyoms.venues.base import CancelAnswer, SubmitOutcome, UserEvent, UserSink, Venue

__all__ = ["CancelAnswer", "SubmitOutcome", "UserEvent", "UserSink", "Venue"]
