"""Run `distillers_icd_rrd.plot_tsne` from this folder, as the seed's `python plot_tsne.py ...` did."""

from distillers_icd_rrd.plot_tsne import main

if __name__ == "__main__":
    main()
