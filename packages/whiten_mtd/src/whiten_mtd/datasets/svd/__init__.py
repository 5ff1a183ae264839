"""SVD near-duplicate video retrieval: metadata/datasets (`core`), distributed loaders (`loader`), eval (`eval`)."""
