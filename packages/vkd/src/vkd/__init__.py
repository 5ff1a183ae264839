"""vkd: a faithful, installable reproduction of roymiles/VkD (CVPR 2024), classification part.

The original's top-level modules (`train`, `evaluate`, `engine`, `augment`, `datasets`, `samplers`,
`distributed_utils`, `models`, `utils`) live here as `vkd.*`; `main_distributed.py` stays at the package root.
"""

__version__ = "0.1.0"
