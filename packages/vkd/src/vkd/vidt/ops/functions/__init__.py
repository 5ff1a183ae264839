"""Deformable-attention sampling functions: the compiled op's autograd wrapper and the pure-PyTorch path."""

from .ms_deform_attn_func import (
    BACKENDS,
    EXTENSION_NAME,
    MSDeformAttnFunction,
    compiled_op,
    ms_deform_attn,
    ms_deform_attn_core_pytorch,
)

__all__ = [
    "BACKENDS",
    "EXTENSION_NAME",
    "MSDeformAttnFunction",
    "compiled_op",
    "ms_deform_attn",
    "ms_deform_attn_core_pytorch",
]
