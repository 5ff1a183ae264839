"""The 16 `--distill` choices of `train_student.py`, mapped to the criterion class each one builds."""

from __future__ import annotations

from torch import nn

from kdrepro_shared.errors import KdReproError

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
from .RRD import RRDLoss
from .SP import Similarity
from .VID import VIDLoss

# order = the original argparse `choices`
DISTILLERS: dict[str, type[nn.Module]] = {
    "kd": DistillKL,
    "hint": HintLoss,
    "attention": Attention,
    "similarity": Similarity,
    "correlation": Correlation,
    "vid": VIDLoss,
    "crd": CRDLoss,
    "kdsvd": KDSVD,
    "fsp": FSP,
    "rkd": RKDLoss,
    "pkt": PKT,
    "abound": ABLoss,
    "factor": FactorTransfer,
    "nst": NSTLoss,
    "icd": ICDLoss,
    "rrd": RRDLoss,
}


def get_distiller_names() -> list[str]:
    """The valid `--distill` names, in the original's argparse order."""
    return list(DISTILLERS)


def get_distiller(name: str) -> type[nn.Module]:
    """Criterion class of a `--distill` name; an unknown name raises a one-line KdReproError listing the valid ones."""
    try:
        return DISTILLERS[name]
    except KeyError:
        raise KdReproError(f"unknown --distill {name!r}; choose one of: {', '.join(DISTILLERS)}") from None
