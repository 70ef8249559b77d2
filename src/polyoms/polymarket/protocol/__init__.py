"""Everything specific to the venue's wire protocol; pure (no I/O)."""
