"""The local exchange's network face: REST (and later WebSocket) speaking the venue's protocol."""
