"""Entry script of the original `gld_distill.py`: multi-teacher distillation on GLDv2 (whiten_mtd.gld_distill_main)."""

from whiten_mtd.gld_distill_main import main

if __name__ == "__main__":
    main()
