"""Shared helpers of the original `common/` package: keypoint NMS and sampling, preprocessing, FIRE AUC, warps."""
