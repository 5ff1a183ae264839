"""Teachers from fake files in the authors' layouts, MultiTeacher and MultiTeacherDistillModel vs the original.

The original (0cd5887) was run on files written by `whiten_mtd.models.fake_weights`; its outputs are the fixtures.
The ResNet-101 GeM / AP-GeM / SOLAR / DOLG files (~200-350 MB each) are only written for `-m slow`.
"""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdrepro_shared.checkpoints import save
from kdrepro_shared.errors import CheckpointError, KdReproError
from whiten_mtd.models import resnet as resnet_module
from whiten_mtd.models.distill_model import MultiTeacher, MultiTeacherDistillModel, archs
from whiten_mtd.models.fake_weights import fake_checkpoint, fake_state, write_fake_pca, write_fake_weights
from whiten_mtd.models.pca_layer import pca_layers
from whiten_mtd.models.teachers import TEACHER_FILES, build_teacher, needs_bgr, teacher_models

FIXTURES = Path(__file__).parent / "fixtures" / "models"
LIGHT = ["mocov3", "barlowtwins", "resnet101_delg"]
HEAVY = ["resnet101_gem", "resnet101_ap_gem", "resnet101_solar", "resnet101_dolg"]


def load_fixtures(suffix: str) -> tuple[dict, dict[str, np.ndarray]]:
    keys = json.loads((FIXTURES / f"keys{suffix}.json").read_text())
    with np.load(FIXTURES / f"outputs{suffix}.npz") as data:
        return keys, dict(data)


KEYS, OUT = load_fixtures("")


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def close(actual: torch.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="session")
def light_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet-50 MoCo v3 / Barlow Twins and ResNet-101 DELG files with their PCA layers (~15 s)."""
    return write_fake_weights(tmp_path_factory.mktemp("weights_light"), LIGHT)


@pytest.fixture(scope="session")
def all_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All seven teacher files and PCA layers (~1.4 GB; slow tests only)."""
    return write_fake_weights(tmp_path_factory.mktemp("weights_all"), list(teacher_models))


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def check_teacher(name: str, weights: Path, p: float, keys: dict, out: dict[str, np.ndarray]) -> None:
    teacher = build_teacher(name, weights, gem_p=p).eval()
    assert [[k, list(v.shape)] for k, v in teacher.state_dict().items()] == keys[f"teacher/{name}"]
    assert teacher.embed_dim == keys[f"teacher/{name}/embed_dim"]
    assert not any(t.is_meta for t in teacher.state_dict().values())
    with torch.no_grad():
        close(teacher(randn(2, 3, 64, 64, seed=2)), out[f"teacher/{name}/p{p:g}"])


@pytest.mark.parity
@pytest.mark.parametrize("name", LIGHT)
@pytest.mark.parametrize("p", [3.0, 1.0])
def test_light_teacher_matches_original(name: str, p: float, light_weights: Path) -> None:
    check_teacher(name, light_weights, p, KEYS, OUT)


@pytest.mark.parity
@pytest.mark.parametrize("name", LIGHT)
def test_pca_layer_of_teacher_matches_original(name: str, light_weights: Path) -> None:
    pca = pca_layers[name](light_weights)
    x = torch.nn.functional.normalize(randn(2, int(pca.dim1), seed=4), dim=-1)
    close(pca(x), OUT[f"pca/{name}"])


def test_delg_gem_power_is_overridden(light_weights: Path) -> None:
    teacher = build_teacher("resnet101_delg", light_weights, gem_p=1.0)
    assert teacher.globalmodel.head.pool.p.item() == 1.0
    assert needs_bgr("resnet101_delg") and needs_bgr("resnet101_dolg") and not needs_bgr("mocov3")


@pytest.mark.parity
@pytest.mark.parametrize(
    ("label", "names", "p"), [("mocov3+resnet101_delg", LIGHT[::2], 3.0), ("mocov3+barlowtwins", LIGHT[:2], 1.0)]
)
def test_multiteacher_matches_original(label: str, names: list[str], p: float, light_weights: Path) -> None:
    teachers = MultiTeacher(light_weights, *names, p=p, embed_dim=512).eval()
    assert teachers.embed_dims == KEYS[f"multiteacher/{label}/embed_dims"]
    with torch.no_grad():
        outs = teachers(randn(2, 3, 64, 64, seed=5))
    for i, out in enumerate(outs):
        close(out, OUT[f"multiteacher/{label}/{i}"])


def test_multiteacher_flips_channels_for_delg(light_weights: Path) -> None:
    teachers = MultiTeacher(light_weights, "resnet101_delg", p=3.0).eval()
    x = randn(2, 3, 64, 64, seed=5)
    with torch.no_grad():
        direct = teachers.norm_layers[0](torch.nn.functional.normalize(teachers.encoders[0](x.flip(1)), dim=-1))
        torch.testing.assert_close(teachers(x)[0], direct)


def test_unknown_teacher_is_one_line(light_weights: Path) -> None:
    with pytest.raises(KdReproError, match="valid: mocov3, barlowtwins"):
        build_teacher("resnet50_delg", light_weights)
    with pytest.raises(KdReproError, match="unknown or no teachers"):
        MultiTeacher(light_weights, "mocov3", "vit")


def test_missing_teacher_file_names_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        build_teacher("resnet101_dolg", tmp_path)
    message = str(err.value)
    assert "r101_dolg_512.pyth" in message and "\n" not in message
    assert f"python -m kdrepro_shared.checkpoints fetch whiten_mtd/dolg --dest-dir {tmp_path}" in message


def test_teacher_file_with_wrong_layout(tmp_path: Path) -> None:
    ckpt = fake_checkpoint("barlowtwins")
    del ckpt["model"]["module.backbone.layer4.2.bn3.running_var"]
    save(tmp_path / TEACHER_FILES["barlowtwins"], ckpt, meta=False)
    with pytest.raises(CheckpointError, match=r"1 missing keys \['layer4.2.bn3.running_var'\]"):
        build_teacher("barlowtwins", tmp_path)
    ckpt = fake_checkpoint("barlowtwins")
    ckpt["model"]["module.backbone.fc.weight"] = torch.zeros(3, 3)
    save(tmp_path / TEACHER_FILES["barlowtwins"], ckpt, meta=False)
    with pytest.raises(CheckpointError, match=r"1 unexpected keys \['fc.weight'\]"):
        build_teacher("barlowtwins", tmp_path)
    del ckpt["model"]["module.backbone.fc.weight"]
    ckpt["model"]["module.backbone.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    save(tmp_path / TEACHER_FILES["barlowtwins"], ckpt, meta=False)
    with pytest.raises(CheckpointError, match=r"size mismatch for conv1\.weight"):
        build_teacher("barlowtwins", tmp_path)
    save(tmp_path / TEACHER_FILES["barlowtwins"], {"state_dict": {}}, meta=False)
    with pytest.raises(CheckpointError, match="has no entry 'model'"):
        build_teacher("barlowtwins", tmp_path)


def test_teacher_file_with_python_objects_loads_with_warning(tmp_path: Path, light_weights: Path) -> None:
    ckpt = torch.load(light_weights / TEACHER_FILES["mocov3"], weights_only=True)
    ckpt["args"] = Namespace(arch="resnet50")  # what a training script's checkpoint may pickle
    torch.save(ckpt, tmp_path / TEACHER_FILES["mocov3"])
    with pytest.warns(UserWarning, match="trusted"):
        build_teacher("mocov3", tmp_path)


def distill_args(weights: Path) -> Namespace:
    return Namespace(arch="resnet18", embed_dim=512, p=3.0, teachers=LIGHT[::2], path_to_pretrained_weights=weights)


def fake_imagenet(arch: str) -> dict[str, torch.Tensor]:
    """What the original's monkeypatched `load_state_dict_from_url` returned while recording."""
    return fake_state(getattr(__import__("torchvision").models, arch)(weights=None))


@pytest.mark.parity
def test_distill_model_matches_original(light_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resnet_module, "imagenet_state_dict", fake_imagenet)
    model = MultiTeacherDistillModel(distill_args(light_weights))
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == KEYS["distill/state_dict"]
    assert list(model.state_dict(prefix="module.")) == ["module." + k for k, _ in KEYS["distill/state_dict"]]
    torch.testing.assert_close(model.base_encoder.conv1.weight, fake_imagenet("resnet18")["conv1.weight"])
    model.train()
    training = [model.base_encoder.training, model.teacher_encoders.training]
    assert [*training, any(m.training for m in model.teacher_encoders.modules())] == KEYS["distill/training"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == KEYS["distill/trainable"]
    assert sum(p.numel() for p in model.parameters()) == KEYS["distill/total"]

    model.base_encoder.load_state_dict(fake_state(model.base_encoder))
    x1, x2 = randn(2, 3, 64, 64, seed=6), randn(2, 3, 64, 64, seed=7)
    for mode in ["train", "eval"]:
        model.train(mode == "train")
        stu1, stu2, tch1, tch2 = model(x1, x2)
        close(stu1, OUT[f"distill/{mode}/stu1"])
        close(stu2, OUT[f"distill/{mode}/stu2"])
        for i in range(2):
            close(tch1[i], OUT[f"distill/{mode}/tch1/{i}"])
            close(tch2[i], OUT[f"distill/{mode}/tch2/{i}"])
        assert stu1.requires_grad == KEYS[f"distill/{mode}/stu_requires_grad"]
        assert tch1[0].requires_grad == KEYS[f"distill/{mode}/tch_requires_grad"]


def test_distill_model_without_imagenet_and_resume(light_weights: Path) -> None:
    model = MultiTeacherDistillModel(distill_args(light_weights), imagenet_init=False)
    state = model.state_dict()
    assert all(k.startswith("base_encoder.") for k in state) and len(state) == 122
    result = model.load_state_dict(state, strict=False)  # how gld_distill resumes
    assert not result.unexpected_keys and all(k.startswith("teacher_encoders.") for k in result.missing_keys)
    assert isinstance(model.base_encoder, type(archs["resnet18"](num_classes=512)))


@pytest.mark.slow
@pytest.mark.parity
@pytest.mark.parametrize("name", HEAVY)
def test_heavy_teacher_matches_original(name: str, all_weights: Path) -> None:
    keys, out = load_fixtures("_heavy")
    check_teacher(name, all_weights, 3.0, keys, out)
    pca = pca_layers[name](all_weights)
    close(pca(torch.nn.functional.normalize(randn(2, int(pca.dim1), seed=4), dim=-1)), out[f"pca/{name}"])


@pytest.mark.slow
@pytest.mark.parity
@pytest.mark.parametrize(
    ("label", "names"),
    [
        ("resnet101_delg+resnet101_dolg", ["resnet101_delg", "resnet101_dolg"]),
        ("resnet101_gem+resnet101_ap_gem+resnet101_solar", ["resnet101_gem", "resnet101_ap_gem", "resnet101_solar"]),
    ],
)
def test_heavy_multiteacher_matches_original(label: str, names: list[str], all_weights: Path) -> None:
    keys, out = load_fixtures("_heavy")
    teachers = MultiTeacher(all_weights, *names, p=3.0, embed_dim=512).eval()
    assert teachers.embed_dims == keys[f"multiteacher/{label}/embed_dims"]
    with torch.no_grad():
        for i, actual in enumerate(teachers(randn(2, 3, 64, 64, seed=5))):
            close(actual, out[f"multiteacher/{label}/{i}"])


def test_pca_width_must_match_the_teacher(tmp_path: Path, light_weights: Path) -> None:
    write_fake_pca("mocov3", tmp_path, embed_dim=16, dim1=64)
    (tmp_path / TEACHER_FILES["mocov3"]).symlink_to(light_weights / TEACHER_FILES["mocov3"])
    with pytest.raises(KdReproError, match="takes 64-d input but mocov3 gives 2048-d"):
        MultiTeacher(tmp_path, "mocov3", p=1.0)


@pytest.mark.gpu
@pytest.mark.parity
def test_distill_model_on_cuda_matches_original(light_weights: Path) -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = MultiTeacherDistillModel(distill_args(light_weights), imagenet_init=False)
    model.base_encoder.load_state_dict(fake_state(model.base_encoder))
    model = model.cuda().eval()
    with torch.no_grad():
        stu1, stu2, tch1, tch2 = model(randn(2, 3, 64, 64, seed=6).cuda(), randn(2, 3, 64, 64, seed=7).cuda())
    for actual, key in [(stu1, "stu1"), (stu2, "stu2"), (tch1[0], "tch1/0"), (tch1[1], "tch1/1"), (tch2[1], "tch2/1")]:
        np.testing.assert_allclose(actual.cpu().numpy(), OUT[f"distill/eval/{key}"], rtol=1e-3, atol=1e-4)
