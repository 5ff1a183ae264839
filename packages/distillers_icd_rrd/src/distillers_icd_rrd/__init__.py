"""distillers_icd_rrd: a faithful, installable reproduction of giakoumoglou/distillers (ICD, RRD and RepDistiller).

The original's top-level `models`, `datasets` and `distillers` live here as `distillers_icd_rrd.models`,
`distillers_icd_rrd.datasets` and `distillers_icd_rrd.distillers`; the entry scripts stay at the package root.
"""

__version__ = "0.1.0"
