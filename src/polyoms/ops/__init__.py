"""Operations: configuration, the long-running daemon and its local control API, setup checks."""
