"""whiten_mtd: a faithful, installable reproduction of Maryeon/whiten_mtd (Whiten-MTD, AAAI 2024)."""

__version__ = "0.1.0"
