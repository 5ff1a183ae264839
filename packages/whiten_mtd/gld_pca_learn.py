"""Entry script of the original `gld_pca_learn.py`: learn a teacher's PCA-whitening (whiten_mtd.gld_pca_learn_main)."""

from whiten_mtd.gld_pca_learn_main import main

if __name__ == "__main__":
    main()
