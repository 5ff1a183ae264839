"""Reading and loading the original's `{'net', 'optimizer', 'epoch'}` checkpoints, with one-line errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdrepro_shared.checkpoints.io import load
from kdrepro_shared.errors import CheckpointError

CHECKPOINT_LAYOUT = "{'net', 'optimizer', 'epoch'}"
RELEASED_WEIGHTS_HINT = (
    "the released SuperRetina.pth / LKUNET.pth / SwinEncoder.pth come from "
    "`python -m kdrepro_shared.checkpoints fetch rkd_retina/models_zip` (unzip into ./save/)"
)


def read_checkpoint(
    path: str | Path, setting: str, device: str | torch.device = "cpu", hint: str = ""
) -> dict[str, Any]:
    """The checkpoint dict at `path`; a folder, a missing file or a dict without 'net' is one line naming `setting`."""
    path = Path(path)
    where = f"{setting} {path}"
    tail = f"; {hint}" if hint else ""
    if path.is_dir():
        raise CheckpointError(f"{where} is a directory; point it at a checkpoint file (a {CHECKPOINT_LAYOUT} dict)")
    if not path.is_file():
        raise CheckpointError(f"{where} does not exist (expected a {CHECKPOINT_LAYOUT} file){tail}")
    try:
        checkpoint = load(path, map_location=device)
    except CheckpointError:
        checkpoint = load(path, map_location=device, weights_only=False, trusted_legacy=f"RKD {CHECKPOINT_LAYOUT}")
    if not isinstance(checkpoint, dict) or "net" not in checkpoint:
        raise CheckpointError(f"{where} holds no 'net' state dict (expected {CHECKPOINT_LAYOUT})")
    return checkpoint


def load_net(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Strictly load `state` into `model`; missing, unexpected or mis-shaped keys are one line naming `path`."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or reshaped:
        examples = ", ".join((missing + unexpected + reshaped)[:3])
        raise CheckpointError(
            f"{path} does not fit {type(model).__module__}.{type(model).__name__}: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(reshaped)} mis-shaped keys (e.g. {examples}); wrong model name?"
        )
    model.load_state_dict(state)
