"""kdrepro_shared: the thin layer the kd-repro paper packages share.

Nothing here is paper-specific: checkpoint registry and I/O, device and distributed helpers, seeding,
readers for datasets several papers use, and logging.
"""

__version__ = "0.1.0"
