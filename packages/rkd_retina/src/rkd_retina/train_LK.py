# ruff: noqa: N999 (the original script name)
"""Original `train_LK.py`: train the LK network (`model.LKUNET`, large-kernel encoder blocks).

Reads `./config/train.yaml` (or `--config`); saves `<model_save_path>_<epoch>` every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from kdrepro_shared.errors import exit_on_user_error
from rkd_retina.common.train_util_original import train_model
from rkd_retina.train_entry import run


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> nn.Module:
    """Train as the original script did; return the trained model."""
    return run("LKUNet", train_model, argv, __doc__)


if __name__ == "__main__":
    main()
