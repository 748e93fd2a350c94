"""The knowledge base: rules and tables as validated data (being written)."""
