"""Datasets of the original `dataset/` package, the FIRE layout, and tiny fake-data writers for tests."""
