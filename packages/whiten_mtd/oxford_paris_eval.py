"""Run `whiten_mtd.oxford_paris_eval_main` from this folder, as the original's `python oxford_paris_eval.py ...` did."""

from whiten_mtd.oxford_paris_eval_main import main

if __name__ == "__main__":
    main()
