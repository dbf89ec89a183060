"""Analysis passes over the graph IR."""
