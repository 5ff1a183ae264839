"""Run `vkd.main_distributed` from this folder, as the original's `python main_distributed.py ...` did."""

from vkd.main_distributed import main

if __name__ == "__main__":
    main()
