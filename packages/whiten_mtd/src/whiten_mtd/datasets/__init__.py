"""Datasets of Whiten-MTD: GLDv2 training data (`gld`), ROxford5k/RParis6k (`oxford_paris`) and SVD (`svd`)."""
