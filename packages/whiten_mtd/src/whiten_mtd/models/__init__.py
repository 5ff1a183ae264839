"""Models of Whiten-MTD: students, the seven teachers, PCA-whitening layers and the distillation wrapper."""
