"""Two one-step epochs of train_base / train_LK / train_Swin against the original scripts (fixtures/train_step).

Both sides: the tiny fake Our_data (2 labelled + 1 auxiliary image, model size 64, batch 3 → one optimizer step per
epoch; epoch 0 without PKE, epoch 1 with), augmentation off, `affine_images` replaced by `fixed_affine`, weights from
`fill_deterministic` followed by `torch.manual_seed(42)` and `random.seed(0)` (so DataLoader order and Swin dropout
draw the same numbers). Compared: the logged phase values of both epochs and a summary (sum, sum of squares, four
sampled elements) of every float tensor of the saved `<path>_0` and `<path>_1` checkpoints.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from rkd_retina import train_base, train_entry, train_LK, train_Swin
from rkd_retina.common import train_util_original
from rkd_retina.dataset.fake_data import write_fake_our_data
from rkd_retina.dataset.retina_dataset import RetinaAugmenter
from rkd_retina.model import superRetina
from rkd_retina.model.super_retina import SuperRetinaTeacher
from rkd_retina.testing import fill_deterministic, fixed_affine

pytestmark = pytest.mark.parity
FIXTURES = Path(__file__).parent / "fixtures" / "train_step"
CONFIG = Path(__file__).parents[1] / "config" / "train.yaml"
SCRIPTS = {"base": train_base, "LK": train_LK, "Swin": train_Swin}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def summary(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per float tensor: [sum, sum of squares, 4 elements at indices seeded by the key] in float64."""
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        flat = value.detach().double().flatten()
        idx = torch.randint(0, flat.numel(), (4,), generator=torch.Generator().manual_seed(zlib.crc32(key.encode())))
        out[key] = np.concatenate([[flat.sum().item(), (flat**2).sum().item()], flat[idx].numpy()])
    return out


def deterministic(get_class: Callable[[str], type[nn.Module]]) -> Callable[[str], Callable[..., nn.Module]]:
    """Wrap the registry so each built model gets `fill_deterministic` weights and the RNGs are reseeded."""

    def lookup(name: str) -> Callable[..., nn.Module]:
        def build(*args: object, **kwargs: object) -> nn.Module:
            model = fill_deterministic(get_class(name)(*args, **kwargs))
            torch.manual_seed(42)
            random.seed(0)
            return model

        return build

    return lookup


def write_config(root: Path) -> Path:
    config = yaml.safe_load(CONFIG.read_text())
    config["MODEL"].update(device="cpu", batch_size=3, num_epoch=2, num_workers=0, detect_anomaly=False)
    config["DATASET"].update(model_image_width=64, model_image_height=64)
    path = root / "config" / "train.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_two_one_step_epochs_match_original(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script: ModuleType = SCRIPTS[name]
    monkeypatch.chdir(tmp_path)
    write_fake_our_data(tmp_path / "data", size=128)
    write_config(tmp_path)
    (tmp_path / "save").mkdir()
    torch.save({"net": SuperRetinaTeacher().state_dict()}, tmp_path / "save" / "SuperRetina.pth")
    monkeypatch.setattr(superRetina, "affine_images", fixed_affine)
    monkeypatch.setattr(RetinaAugmenter, "__call__", lambda self, image: image)
    monkeypatch.setattr(train_entry, "get_model_class", deterministic(train_entry.get_model_class))
    logged: list[dict[str, float]] = []
    scalars = train_util_original.RunLogger.scalars
    monkeypatch.setattr(
        train_util_original.RunLogger, "scalars", lambda self, v, e: (logged.append(dict(v)), scalars(self, v, e))
    )

    script.main([])

    expected_logs = json.loads((FIXTURES / f"{name}_logs.json").read_text())
    assert [list(d) for d in logged] == [list(d) for d in expected_logs]
    for got, want in zip(logged, expected_logs, strict=True):
        np.testing.assert_allclose(list(got.values()), list(want.values()), rtol=1e-4, atol=1e-5)
    with np.load(FIXTURES / f"{name}.npz") as fx:
        for epoch in (0, 1):
            checkpoint = torch.load(tmp_path / "CheckPoints" / f"Model_Base.pth_{epoch}", weights_only=True)
            assert set(checkpoint) == {"net", "optimizer", "epoch"} and checkpoint["epoch"] == epoch
            got = summary(checkpoint["net"])
            assert sorted(got) == sorted(k.split("/", 1)[1] for k in fx.files if k.startswith(f"ep{epoch}/"))
            for key, value in got.items():
                np.testing.assert_allclose(value, fx[f"ep{epoch}/{key}"], rtol=1e-5, atol=2e-5, err_msg=key)
