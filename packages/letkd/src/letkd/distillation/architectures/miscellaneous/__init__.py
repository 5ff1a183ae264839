"""letKD's auxiliary modules: the KD value layers, the LDA/PCA projections and the k-means vector quantizer."""
