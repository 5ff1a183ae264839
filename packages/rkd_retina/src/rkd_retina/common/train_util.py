"""Training helpers of the original `common/train_util.py` (Swin training), shared with `train_util_original`."""

from rkd_retina.common.train_util_original import (
    affine_images,
    affine_theta,
    get_gaussian_kernel,
    value_map_load,
    value_map_save,
)

__all__ = ["affine_images", "affine_theta", "get_gaussian_kernel", "value_map_load", "value_map_save"]
