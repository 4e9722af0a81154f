"""Text embeddings of items in pgvector: backends, refresh services, search selectors."""
