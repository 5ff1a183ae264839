"""Run `distillers_icd_rrd.transfer_student` from this folder, as the seed's `python transfer_student.py ...` did."""

from distillers_icd_rrd.transfer_student import main

if __name__ == "__main__":
    main()
