"""Run `distillers_icd_rrd.train_student` from this folder, as the seed's `python train_student.py ...` did."""

from distillers_icd_rrd.train_student import main

if __name__ == "__main__":
    main()
