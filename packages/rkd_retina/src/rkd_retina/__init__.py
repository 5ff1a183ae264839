"""rkd_retina: a faithful, installable reproduction of NiharGupte/ReverseKnowledgeDistillation (WACV 2024).

The original's top-level `common`, `dataset`, `loss` and `model` live here as `rkd_retina.common`,
`rkd_retina.dataset`, `rkd_retina.loss` and `rkd_retina.model`; the entry scripts stay at the package root.
"""

__version__ = "0.1.0"
