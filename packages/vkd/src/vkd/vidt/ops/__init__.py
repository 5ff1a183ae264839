"""Multi-scale deformable attention (Deformable-DETR's op) for the ViDT decoder.

The pure-PyTorch path runs on the CPU and whenever the compiled op is absent; on CUDA the op in `src/` is built on
first use when nvcc is present (never at install time) and cached under `$KDREPRO_HOME/extensions/`.
"""

from .functions.ms_deform_attn_func import (
    BACKENDS,
    EXTENSION_NAME,
    MSDeformAttnFunction,
    compiled_op,
    ms_deform_attn,
    ms_deform_attn_core_pytorch,
)
from .modules import MSDeformAttn

__all__ = [
    "BACKENDS",
    "EXTENSION_NAME",
    "MSDeformAttn",
    "MSDeformAttnFunction",
    "compiled_op",
    "ms_deform_attn",
    "ms_deform_attn_core_pytorch",
]
