"""Offline k-means of teacher features (the penultimate letKD-1 targets)."""
