"""Run `whiten_mtd.svd_eval_main` from this folder, as the original's `python svd_eval.py ...` did."""

from whiten_mtd.svd_eval_main import main

if __name__ == "__main__":
    main()
