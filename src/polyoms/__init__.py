"""polyoms: an order-management and execution system for Polymarket's CLOB V2."""

__version__ = "0.1.0"
