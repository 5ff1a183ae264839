"""Losses of the original `loss/` package: Dice for detector maps, triplet + GOR for descriptors."""
