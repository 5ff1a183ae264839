"""CIFAR backbones of the original (RepDistiller models with letKD's extraction points and `downscale` option)."""
