"""Classifier heads of the original (`classifiers.classifier`: linear, or the cosine BoW predictor)."""
