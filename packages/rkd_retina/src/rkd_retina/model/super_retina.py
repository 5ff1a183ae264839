"""SuperRetinaTeacher (original `model/super_retina.py`): SuperRetina under another name, the frozen RKD teacher.

Same layers and state_dict keys as `superRetina.SuperRetina`; its methods are named `network1`/`forward1` and,
as originally, calling the module itself (`teacher(x)`) is not implemented.
"""

from __future__ import annotations

from torch import nn

from rkd_retina.model.superRetina import SuperRetina


class SuperRetinaTeacher(SuperRetina):
    """SuperRetina with `network1`/`forward1` in place of `network`/`forward` (the Swin student calls `forward1`)."""

    network1 = SuperRetina.network
    forward1 = SuperRetina.forward
    forward = nn.Module.forward
