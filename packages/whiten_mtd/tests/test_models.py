"""Students, GeM, the modified ResNet, SOLAR's SOA block and every model's key layout vs the original (0cd5887)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdrepro_shared.errors import DownloadError, KdReproError
from whiten_mtd.models import resnet as resnet_module
from whiten_mtd.models.delg.model import R50_DELG, R101_DELG
from whiten_mtd.models.distill_model import archs, build_student
from whiten_mtd.models.dolg.model import DOLG
from whiten_mtd.models.fake_weights import fake_checkpoint, fake_state, meta_value
from whiten_mtd.models.gem_pooling import GeneralizedMeanPooling
from whiten_mtd.models.resnet import resnet50, resnet101
from whiten_mtd.models.solar.networks import ResNetSOAs, SOABlock
from whiten_mtd.models.teachers import (
    barlowtwins_head,
    mocov3_head,
    remap_ap_gem,
    remap_barlowtwins,
    remap_delg,
    remap_dolg,
    remap_mocov3,
    remap_solar,
    split_head,
)

FIXTURES = Path(__file__).parent / "fixtures" / "models"
KEYS = json.loads((FIXTURES / "keys.json").read_text()) | json.loads((FIXTURES / "keys_heavy.json").read_text())


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "outputs.npz") as data:
        return dict(data)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def key_list(module: nn.Module) -> list[list]:
    return [[k, list(v.shape)] for k, v in module.state_dict().items()]


def on_meta(build):
    with torch.device("meta"):
        return build()


def filled_student(arch: str, p: float) -> nn.Module:
    student = build_student(arch, 512, p)
    student.load_state_dict(fake_state(student))
    return student.eval()


@pytest.mark.parity
@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
@pytest.mark.parametrize("p", [3.0, 1.0])
def test_student_matches_original(arch: str, p: float, expected: dict[str, np.ndarray]) -> None:
    student = filled_student(arch, p)
    assert key_list(student) == KEYS[f"student/{arch}"]
    with torch.no_grad():
        out = student(randn(2, 3, 64, 64, seed=1))
        out_wide = student(randn(1, 3, 72, 96, seed=3))
    np.testing.assert_allclose(out.numpy(), expected[f"student/{arch}/p{p:g}"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out_wide.numpy(), expected[f"student/{arch}/p{p:g}/72x96"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("arch", "params", "entries"), [("resnet18", 11_439_168, 122), ("resnet34", 21_547_328, 218)])
def test_student_size(arch: str, params: int, entries: int) -> None:
    student = on_meta(lambda: build_student(arch))
    assert sum(p.numel() for p in student.parameters()) == params
    assert len(student.state_dict()) == entries
    assert isinstance(student.avgpool, GeneralizedMeanPooling)


def test_student_rejects_bad_arch_and_dim() -> None:
    with pytest.raises(KdReproError, match="valid: resnet18, resnet34"):
        build_student("mobilenet_v2")
    with pytest.raises(KdReproError, match="only --embed_dim 512"):
        build_student("resnet18", embed_dim=256)


def test_student_imagenet_init(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_imagenet(arch: str) -> dict[str, torch.Tensor]:
        calls.append(arch)
        return fake_state(on_meta(lambda: archs[arch](num_classes=1000)), fill=lambda k, s: torch.full(s, 0.5))

    monkeypatch.setattr(resnet_module, "imagenet_state_dict", fake_imagenet)
    student = build_student("resnet18", pretrained=True)
    assert calls == ["resnet18"]
    assert torch.equal(student.conv1.weight, torch.full_like(student.conv1.weight, 0.5))
    assert student.fc.weight.shape == (512, 512) and not torch.all(student.fc.weight == 0.5)


def test_imagenet_weights_missing_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KDREPRO_OFFLINE", "1")
    monkeypatch.setenv("KDREPRO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(DownloadError, match=r"resnet18-f37072fd\.pth") as err:
        resnet_module.imagenet_state_dict("resnet18")
    assert "\n" not in str(err.value)


def test_gem_pooling() -> None:
    x = randn(2, 5, 3, 4, seed=0)
    torch.testing.assert_close(GeneralizedMeanPooling(1.0)(x), x.mean(dim=(2, 3)))
    expected = x.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
    torch.testing.assert_close(GeneralizedMeanPooling(3.0)(x), expected)
    assert not GeneralizedMeanPooling(3.0).state_dict()


def test_resnet_without_fc_is_l2_normalised() -> None:
    model = resnet50(num_classes=0).eval()
    assert isinstance(model.fc, nn.Identity) and model.embed_dim == 2048
    with torch.no_grad():
        out = model(randn(2, 3, 64, 64, seed=0))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert resnet101(num_classes=7).embed_dim == 7


@pytest.mark.parity
def test_soa_block_matches_original(expected: dict[str, np.ndarray]) -> None:
    block = SOABlock(1024, 4)
    assert key_list(block) == KEYS["soa"]
    block.load_state_dict(fake_state(block))
    block.eval()
    with torch.no_grad():
        out, attn = block(randn(2, 1024, 4, 4, seed=8))
        _, attn_draw = block(randn(2, 1024, 4, 4, seed=8), True)
    np.testing.assert_allclose(out[:, :32].numpy(), expected["soa/out_first32"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.sum(dim=(2, 3)).numpy(), expected["soa/out_sum_per_channel"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(attn.numpy(), expected["soa/attn"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attn_draw.numpy(), expected["soa/attn_draw"], rtol=1e-5, atol=1e-6)


def test_fresh_soa_block_is_identity() -> None:
    block = SOABlock(64, 2)
    x = randn(1, 64, 3, 3, seed=0)
    torch.testing.assert_close(block(x)[0], x)


def _gem_model() -> nn.Module:
    backbone = resnet101(num_classes=0)
    return nn.ModuleDict({"backbone": backbone, "fc": nn.Linear(2048, 2048)})


def _solar_model() -> nn.Module:
    return nn.ModuleDict({"backbone": ResNetSOAs(), "fc": nn.Linear(2048, 2048)})


def _gem_remap(ckpt: dict) -> dict:
    rest, fc = split_head(ckpt["state_dict"], "fc.weight", "fc.bias", "resnet101_gem")
    return {f"backbone.{k}": v for k, v in rest.items()} | {f"fc.{k}": v for k, v in fc.items()}


def _solar_remap(ckpt: dict) -> dict:
    rest, fc = remap_solar(ckpt["state_dict"])
    return {f"backbone.{k}": v for k, v in rest.items()} | {f"fc.{k}": v for k, v in fc.items()}


# Every teacher's model layout (built on the meta device) equals the original's, and the original's remapping turns
# the file layout into exactly that layout (strict), without touching any real weights.
TEACHER_LAYOUTS = {
    "resnet101_gem": (_gem_model, _gem_remap),
    "resnet101_ap_gem": (lambda: resnet101(num_classes=2048), lambda ck: remap_ap_gem(ck["state_dict"])),
    "resnet101_solar": (_solar_model, _solar_remap),
    "resnet101_delg": (R101_DELG, lambda ck: remap_delg(ck["model_state"], 3.0)),
    "resnet101_dolg": (DOLG, lambda ck: remap_dolg(ck["model_state"], 3.0)),
    "mocov3": (lambda: resnet50(num_classes=0), lambda ck: remap_mocov3(ck["state_dict"])),
    "barlowtwins": (lambda: resnet50(num_classes=0), lambda ck: remap_barlowtwins(ck["model"])),
}


@pytest.mark.parity
@pytest.mark.parametrize("name", list(TEACHER_LAYOUTS))
def test_teacher_layout_and_remapping(name: str) -> None:
    build, remap = TEACHER_LAYOUTS[name]
    model = on_meta(build)
    assert key_list(model) == KEYS[f"teacher/{name}"]
    remapped = remap(fake_checkpoint(name, fill=meta_value))
    assert {k: list(v.shape) for k, v in remapped.items()} == dict(map(tuple, KEYS[f"teacher/{name}"]))


def test_delg_dolg_sizes() -> None:
    delg, dolg = on_meta(R101_DELG), on_meta(DOLG)
    assert sum(p.numel() for p in delg.parameters()) == 43_549_249
    assert sum(p.numel() for p in dolg.parameters()) == 88_332_354
    assert (delg.embed_dim, dolg.embed_dim) == (512, 1024)
    # R50 has 17 fewer stage-3 blocks, each with 3 convs + 3 BNs (5 entries each) = 18 entries
    assert len(on_meta(R50_DELG).state_dict()) == len(delg.state_dict()) - 17 * 18
    assert delg.cfg.is_frozen() and delg.cfg.RESNET.STRIDE_1X1 is False


def test_heads_follow_the_original_key_mapping() -> None:
    moco_file = {
        f"module.base_encoder.fc.{k}": v for k, v in fake_state(on_meta(mocov3_head)[:5], fill=meta_value).items()
    }
    moco_file |= {"module.predictor.0.weight": torch.empty(4096, 256, device="meta")}
    mapped = remap_mocov3(moco_file, with_head=True)
    assert "fc.5.weight" in mapped and "fc.0.weight" in mapped and "fc.4.running_var" in mapped
    assert set(remap_mocov3(moco_file)) == set()
    barlow_file = {"module.projector.0.weight": 1, "module.bn.running_mean": 2, "module.backbone.conv1.weight": 3}
    assert remap_barlowtwins(barlow_file, with_head=True) == {
        "fc.0.weight": 1,
        "fc.7.running_mean": 2,
        "conv1.weight": 3,
    }
    head_keys = set(on_meta(barlowtwins_head).state_dict())
    assert {"0.weight", "7.running_mean"} <= head_keys and "7.weight" not in head_keys
