"""Distillation criteria of the original `distillers/` package (RepDistiller's zoo plus CRD, ICD and RRD)."""

from .AB import ABLoss
from .AT import Attention
from .CC import Correlation
from .CRD import CRDLoss
from .FitNet import HintLoss
from .FSP import FSP
from .FT import FactorTransfer
from .ICD import ICDLoss
from .KD import DistillKL
from .KDSVD import KDSVD
from .NST import NSTLoss
from .PKT import PKT
from .RKD import RKDLoss
from .RRD import RCDLoss, RRDLoss
from .SP import Similarity
from .VID import VIDLoss

__all__ = [
    "FSP",
    "KDSVD",
    "PKT",
    "ABLoss",
    "Attention",
    "CRDLoss",
    "Correlation",
    "DistillKL",
    "FactorTransfer",
    "HintLoss",
    "ICDLoss",
    "NSTLoss",
    "RCDLoss",
    "RKDLoss",
    "RRDLoss",
    "Similarity",
    "VIDLoss",
]
