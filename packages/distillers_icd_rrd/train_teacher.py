"""Run `distillers_icd_rrd.train_teacher` from this folder, as the seed's `python train_teacher.py ...` did."""

from distillers_icd_rrd.train_teacher import main

if __name__ == "__main__":
    main()
