"""Network hygiene shared by the servers polyoms runs (the control API, the local exchange)."""
