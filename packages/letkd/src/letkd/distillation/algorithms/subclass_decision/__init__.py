"""Offline LDA and sub-class pipeline of teacher features (the intermediate letKD-2 targets)."""
