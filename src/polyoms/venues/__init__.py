"""The venue adapters: each translates one venue's protocol to the port (`polyoms.core.venue`)."""
