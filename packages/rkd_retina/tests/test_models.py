"""Model parity with the original `model/` files: state_dict keys/shapes, eval outputs and training-mode forward.

Fixtures come from the original code at NiharGupte/ReverseKnowledgeDistillation@1279ae4 (see fixtures/models/
README.md). Weights come from `rkd_retina.testing.fill_deterministic` (seeded per state_dict key) and the warps from
`rkd_retina.testing.fixed_affine`; the recorder used the same two functions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdrepro_shared.errors import CheckpointError, KdReproError
from rkd_retina.model import LKUNET, LKUNET_attention, superRetina
from rkd_retina.model.registry import MODELS, get_model_class
from rkd_retina.model.super_retina import SuperRetinaTeacher
from rkd_retina.testing import fill_deterministic, fixed_affine

pytestmark = pytest.mark.parity
FIXTURES = Path(__file__).parent / "fixtures" / "models"
CONFIG = {
    "nms_size": 20,
    "nms_thresh": 0.5,
    "gaussian_kernel_size": 13,
    "gaussian_sigma": 2,
    "geometric_thresh": 0.5,
    "content_thresh": 0.7,
    "area": 8,
    "value_increase_point": 5,
    "value_increase_area": 1,
    "value_decay": 1,
}
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("save") / "SuperRetina.pth"
    torch.save({"net": SuperRetinaTeacher().state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def keys() -> dict:
    return json.loads((FIXTURES / "state_dict_keys.json").read_text())


@pytest.fixture(scope="module")
def eval_fx() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "eval_outputs.npz") as data:
        return dict(data)


def build(name: str, teacher_path: Path, config: dict | None = None) -> nn.Module:
    if name == "Swin":
        from rkd_retina.model.super_retina_model_change import SuperRetina as Swin

        return Swin(config, device="cpu", teacher_path=teacher_path)
    classes = {"SuperRetina": superRetina.SuperRetina, "LKUNET": LKUNET.SuperRetina}
    classes["LKUNET_attention"] = LKUNET_attention.SuperRetina
    return classes[name](config, device="cpu")


ALL = ["SuperRetina", "LKUNET", "LKUNET_attention", "Swin"]
EXPECTED_KEYS = {"SuperRetina": 38, "LKUNET": 51, "LKUNET_attention": 80, "Swin": 205}


@pytest.mark.parametrize("name", ALL)
def test_state_dict_keys_shapes_and_counts(name: str, keys: dict, teacher_path: Path) -> None:
    model = build(name, teacher_path)
    ours = [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()]
    assert ours == keys[name]["keys"]
    assert len(ours) == EXPECTED_KEYS[name]
    assert sum(p.numel() for p in model.parameters()) == keys[name]["total_params"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == keys[name]["trainable_params"]


@pytest.mark.parametrize("name", ["SuperRetina", "LKUNET", "Swin"])
def test_released_checkpoint_layout_loads_strictly(name: str, keys: dict, teacher_path: Path, tmp_path: Path) -> None:
    """A `{'net', 'optimizer', 'epoch'}` file with the original's keys/shapes (as the released .pth) loads strictly."""
    dtypes = {"torch.float32": torch.float32, "torch.int64": torch.int64}
    net = {k: torch.ones(shape, dtype=dtypes[dtype]) for k, shape, dtype in keys[name]["keys"]}
    path = tmp_path / f"{name}.pth"
    torch.save({"net": net, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3}, path)
    model = build(name, teacher_path)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["net"])


@pytest.mark.parametrize("name", ALL)
def test_eval_forward_matches_original(name: str, eval_fx: dict[str, np.ndarray], teacher_path: Path) -> None:
    model = fill_deterministic(build(name, teacher_path)).eval()
    with torch.no_grad():
        semi, desc = model(torch.from_numpy(eval_fx["x"]))
    np.testing.assert_allclose(semi.numpy(), eval_fx[f"{name}_semi"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(desc.numpy(), eval_fx[f"{name}_desc"], rtol=RTOL, atol=ATOL)
    if name == "Swin":
        np.testing.assert_allclose(model.l1.item(), eval_fx["Swin_l1"], rtol=RTOL, atol=ATOL)
        with torch.no_grad():
            hidden = model.swinViT(torch.from_numpy(eval_fx["x"]), True)
        for i, h in enumerate(hidden):
            np.testing.assert_allclose(h.numpy(), eval_fx[f"Swin_hs{i}"], rtol=RTOL, atol=ATOL)


def test_teacher_is_superretina_with_renamed_methods(eval_fx: dict[str, np.ndarray]) -> None:
    teacher = fill_deterministic(SuperRetinaTeacher()).eval()
    x = torch.from_numpy(eval_fx["x"])
    with torch.no_grad():
        semi, desc = teacher.forward1(x)
        semi_n, _ = teacher.network1(x)
    np.testing.assert_allclose(semi.numpy(), eval_fx["SuperRetina_semi"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(desc.numpy(), eval_fx["SuperRetina_desc"], rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(semi.numpy(), semi_n.numpy())
    with pytest.raises(NotImplementedError):
        teacher(x)


def test_cnn_output_shapes_for_small_inputs() -> None:
    model = superRetina.SuperRetina().eval()
    with torch.no_grad():
        semi, desc = model(torch.rand(2, 1, 32, 48))
    assert semi.shape == (2, 1, 32, 48)
    assert desc.shape == (2, 256, 2, 4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SuperRetina", "LKUNET"])
def test_full_resolution_shapes(name: str, teacher_path: Path) -> None:
    model = build(name, teacher_path).eval()
    with torch.no_grad():
        semi, desc = model(torch.rand(1, 1, 768, 768))
    assert semi.shape == (1, 1, 768, 768)
    assert desc.shape == (1, 256, 94, 94)


@pytest.fixture(scope="module")
def train_fx() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "training_forward.npz") as data:
        return dict(data)


@pytest.mark.parametrize("learn", [False, True], ids=["pke_off", "pke_on"])
@pytest.mark.parametrize("name", ["SuperRetina", "LKUNET", pytest.param("Swin", marks=pytest.mark.slow)])
def test_training_forward_matches_original(
    name: str, learn: bool, train_fx: dict[str, np.ndarray], teacher_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full training forward + backward (PKE, descriptor loss, value map; Swin: knowledge losses), fixed warps."""
    monkeypatch.setattr(superRetina, "affine_images", fixed_affine)
    tag = f"{name}_{'on' if learn else 'off'}"
    model = fill_deterministic(build(name, teacher_path, CONFIG)).train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.PKE_learn = learn
    x, labels = torch.from_numpy(train_fx["x"]), torch.from_numpy(train_fx["labels"])
    value_map = torch.zeros(2, 1, x.shape[2], x.shape[3], dtype=torch.uint8)
    random.seed(0)
    out = model(x, labels, value_map, torch.where(torch.tensor([True, False])))
    out[0].backward()

    scalars = np.array([out[0].item(), out[1], out[2].item(), out[3].item(), out[7], out[8]])
    np.testing.assert_allclose(scalars, train_fx[f"{tag}_scalars"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out[5].numpy(), train_fx[f"{tag}_enhanced_label"], rtol=RTOL, atol=ATOL)
    if f"{tag}_enhanced_label_pts" in train_fx:
        np.testing.assert_array_equal(out[4].numpy(), train_fx[f"{tag}_enhanced_label_pts"])
    else:
        assert out[4] is None
    np.testing.assert_allclose(
        out[6].detach()[:, :, ::3, ::3].numpy(), train_fx[f"{tag}_detector_pred"], rtol=RTOL, atol=ATOL
    )
    np.testing.assert_array_equal(value_map.numpy(), train_fx[f"{tag}_value_map"])
    named = dict(model.named_parameters())
    grad_keys = ["out.conv.conv.bias" if name == "Swin" else "conv_last.bias", "convDc.bias", "trans_conv.bias"]
    for key in grad_keys:
        np.testing.assert_allclose(named[key].grad.numpy(), train_fx[f"{tag}_grad_{key}"], rtol=1e-3, atol=1e-6)
    if name == "Swin":
        knowledge = np.array([v.item() for v in model.return_knowledge_losses()])
        np.testing.assert_allclose(knowledge, train_fx[f"{tag}_knowledge"], rtol=RTOL, atol=ATOL)
        assert all(p.grad is None for p in model.teacher.parameters())


def test_swin_missing_teacher_is_one_line_error(tmp_path: Path) -> None:
    from rkd_retina.model.super_retina_model_change import SuperRetina as Swin

    missing = tmp_path / "nope" / "SuperRetina.pth"
    with pytest.raises(CheckpointError, match=r"nope/SuperRetina\.pth") as info:
        Swin(device="cpu", teacher_path=missing)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match=r"nope/SuperRetina\.pth"):
        Swin({**CONFIG, "teacher_path": str(missing)}, device="cpu")


def test_swin_rejects_bad_sizes(teacher_path: Path) -> None:
    from rkd_retina.model.super_retina_model_change import SuperRetina as Swin

    with pytest.raises(ValueError, match="divisible by stage-wise"):
        Swin(device="cpu", img_size=(100, 100), teacher_path=teacher_path)
    with pytest.raises(ValueError, match="feature_size"):
        Swin(device="cpu", feature_size=20, teacher_path=teacher_path)


def test_swin_load_from_copies_encoder_weights(teacher_path: Path) -> None:
    from rkd_retina.model.super_retina_model_change import SuperRetina as Swin

    source = fill_deterministic(Swin(device="cpu", teacher_path=teacher_path))
    target = Swin(device="cpu", teacher_path=teacher_path)
    target.load_from({"state_dict": source.state_dict()})
    for key, value in source.state_dict().items():
        if key.startswith("swinViT."):
            torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)


def test_registry_maps_names_to_classes() -> None:
    assert get_model_class("SuperRetina") is superRetina.SuperRetina
    assert get_model_class("LKUNet") is LKUNET.SuperRetina
    assert get_model_class("Swin").__module__ == "rkd_retina.model.super_retina_model_change"
    assert set(MODELS) == {"SuperRetina", "LKUNet", "Swin"}
    with pytest.raises(KdReproError, match="valid names: SuperRetina, LKUNet, Swin") as info:
        get_model_class("ResNet")
    assert "\n" not in str(info.value)
