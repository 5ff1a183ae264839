"""letkd: a faithful, installable reproduction of adagorgun/letKD-framework (BMVC 2023)."""

__version__ = "0.1.0"
