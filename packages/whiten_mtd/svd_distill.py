"""Run `whiten_mtd.svd_distill_main` from this folder, as the original's `python svd_distill.py ...` did."""

from whiten_mtd.svd_distill_main import main

if __name__ == "__main__":
    main()
