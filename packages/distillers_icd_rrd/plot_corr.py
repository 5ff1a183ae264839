"""Run `distillers_icd_rrd.plot_corr` from this folder, as the seed's `python plot_corr.py ...` did."""

from distillers_icd_rrd.plot_corr import main

if __name__ == "__main__":
    main()
