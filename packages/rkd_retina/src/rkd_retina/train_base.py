"""Original `train_base.py`: train the base SuperRetina network (`model.superRetina`).

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
    return run("SuperRetina", train_model, argv, __doc__)


if __name__ == "__main__":
    main()
