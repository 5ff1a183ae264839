"""Run `whiten_mtd.svd_pca_learn_main` from this folder, as the original's `python svd_pca_learn.py ...` did."""

from whiten_mtd.svd_pca_learn_main import main

if __name__ == "__main__":
    main()
