"""The value-map "record" module of SuperRetina (original `model/record_module.py`, identical in RKD).

A per-image uint8 value map remembers where PKE found keypoints in earlier epochs; only positions whose value
reaches `value_increase_point` after NMS become learned labels. The uint8 arithmetic (and its wrap past 255) is
kept on purpose: it is what the released models were trained with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from rkd_retina.common.common_util import simple_nms


def update_value_map(
    value_map: torch.Tensor, points: Iterable[Any], value_map_config: Mapping[str, Any]
) -> torch.Tensor:
    """Update the 1×H×W `value_map` in place with this step's (x, y) `points`; return the selected (x, y) points.

    New isolated points get `value_increase_point`, points next to recorded ones raise their neighbours by
    `value_increase_area`, untouched non-zero positions decay by `value_decay`; selection is an NMS of radius
    `2·area` keeping values ≥ `value_increase_point`.
    """
    raw_value_map = value_map.clone()
    raw_value_map[value_map == 0] = -1  # marks never-recorded positions (255 in uint8)
    area_set = value_map_config["area"]
    half = area_set // 2 // 2
    value_increase_point = value_map_config["value_increase_point"]
    value_increase_area = value_map_config["value_increase_area"]
    value_decay = value_map_config["value_decay"]

    h, w = value_map[0].shape
    for x, y in points:
        y_d = y - half if y - half > 0 else 0
        y_u = y + half if y + half < h else h
        x_l = x - half if x - half > 0 else 0
        x_r = x + half if x + half < w else w
        window = value_map[0, y_d:y_u, x_l:x_r]
        if value_map[0, y, x] != 0 or window.sum() == 0:
            value_map[0, y, x] += value_increase_point
        else:
            window[window > 0] += value_increase_area

    value_map[torch.where(value_map == raw_value_map)] -= value_decay

    selected = simple_nms(value_map.detach().clone().unsqueeze(0).float(), area_set * 2).squeeze()
    final_points = torch.nonzero(selected >= value_increase_point)
    return torch.flip(final_points, [1]).long()
