"""Download the six RepDistiller CIFAR-100 teachers into ./saved_models/<arch>_vanilla/ckpt_epoch_240.pth.

Run from the folder the configs' relative paths start at (this package folder); see `letkd.download_teachers`.
"""

from letkd.download_teachers import main

if __name__ == "__main__":
    raise SystemExit(main())
