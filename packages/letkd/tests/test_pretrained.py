"""Strict loading of `pretrained` files: RepDistiller teacher layouts, globs, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from kdrepro_shared.errors import CheckpointError
from letkd.distillation.architectures import factory
from letkd.distillation.architectures.pretrained import load_pretrained, resolve_pretrained_path
from letkd.distillation.architectures.tools import split_network

FIXTURES = Path(__file__).parent / "fixtures" / "architectures"
REPDISTILLER_KEYS = json.loads((FIXTURES / "repdistiller_teacher_keys.json").read_text())["teachers"]
RN_X4 = {"depth": 32, "num_filters": [32, 64, 128, 256], "num_classes": 100}
WRN_40_2 = {"depth": 40, "widen_Factor": 2, "dropRate": 0.0, "num_classes": 100, "pool": "avg"}
# The teacher networks of the configs (def_file, opt) and the RepDistiller file each one loads.
TEACHERS = {
    "RN56": ("resnet56_vanilla", "feature_extractors.resnet",
             {"depth": 56, "num_filters": [16, 16, 32, 64], "num_classes": 100, "extract_from": ["layer3"],
              "extract_after_relu": [False]}),
    "RN110": ("resnet110_vanilla", "feature_extractors.resnet",
              {"depth": 110, "num_filters": [16, 16, 32, 64], "num_classes": 100, "extract_from": ["layer3"],
               "extract_after_relu": [False]}),
    "RN32x4": ("resnet32x4_vanilla", "feature_extractors.resnet",
               {**RN_X4, "extract_from": ["layer3"], "extract_after_relu": [False]}),
    "RN32x4_downscale": ("resnet32x4_vanilla", "feature_extractors.resnet",
                         {**RN_X4, "extract_from": ["avgpool_2x2"], "extract_after_relu": [False], "downscale": True}),
    "WRN40w2": ("wrn_40_2_vanilla", "feature_extractors.wide_resnet",
                {**WRN_40_2, "extract_from": ["block3"], "extract_after_relu": [True]}),
    "WRN40w2_downscale": ("wrn_40_2_vanilla", "feature_extractors.wide_resnet",
                          {**WRN_40_2, "extract_from": ["avgpool_2x2"], "extract_after_relu": [False],
                           "downscale": True}),
    "RN50_downscale": ("ResNet50_vanilla", "feature_extractors.resnetv2",
                       {"depth": 50, "num_filters": [3, 4, 6, 3], "num_classes": 100, "extract_from": ["avgpool_2x2"],
                        "extract_after_relu": [False], "downscale": True}),
}  # fmt: skip


def repdistiller_state(teacher: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict with exactly the keys and shapes of a RepDistiller teacher, filled with seeded values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in REPDISTILLER_KEYS[teacher]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(93_840, dtype=torch.long)
        else:
            state[key] = torch.randn(shape, generator=g)
    return state


def write_teacher_file(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """Write a file in RepDistiller's train_teacher.py layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    optimizer = {"state": {}, "param_groups": [{"lr": 5e-5, "momentum": 0.9, "params": list(range(len(state)))}]}
    torch.save({"epoch": 240, "model": state, "accuracy": torch.tensor(72.34), "optimizer": optimizer}, path)
    return path


def small_net() -> nn.Module:
    """A small resnet (RN8) for the error cases."""
    return factory("feature_extractors.resnet", {"depth": 8, "num_filters": [16, 16, 32, 64], "num_classes": 10})


@pytest.mark.parity
@pytest.mark.parametrize("config", sorted(TEACHERS))
def test_repdistiller_teacher_files_load_strictly(config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every config teacher takes its RepDistiller file with strict keys; the split extractor keeps those weights."""
    teacher, def_file, opt = TEACHERS[config]
    monkeypatch.chdir(tmp_path)
    state = repdistiller_state(teacher)
    write_teacher_file(tmp_path / "saved_models" / teacher / "ckpt_epoch_240.pth", state)
    network = factory(def_file, opt)
    loaded = load_pretrained(network, f"./saved_models/{teacher}/ckpt_epoch_240.pth", force=True)
    assert loaded.name == "ckpt_epoch_240.pth"
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    fe, _ = split_network(network, opt["extract_from"], opt["extract_after_relu"])
    assert torch.equal(fe[0].weight, state["conv1.weight"])


def test_network_entry_wins_and_glob_takes_last_match(tmp_path: Path) -> None:
    """A file's 'network' entry is preferred over 'model'; a glob loads its last sorted match."""
    source = small_net()
    other = {k: torch.zeros_like(v) for k, v in source.state_dict().items()}
    torch.save({"epoch": "*", "network": source.state_dict(), "model": other, "metric": None}, tmp_path / "net_a.pth")
    torch.save({"model": other}, tmp_path / "net_0.pth")
    target = small_net()
    assert load_pretrained(target, tmp_path / "net_*") == tmp_path / "net_a.pth"
    for key, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_missing_teacher_file_names_the_download_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file: a one-line error giving the download command; other files get the caller's hint."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"python download_cifar100_teacher\.py") as err:
        load_pretrained(small_net(), "./saved_models/resnet56_vanilla/ckpt_epoch_240.pth", force=True)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match=r"not found.*run the kmeans mode"):
        resolve_pretrained_path("./experiments/VQ/x_net_epoch*", missing_hint="run the kmeans mode")


def test_key_mismatch_is_an_error_naming_the_keys(tmp_path: Path) -> None:
    """A file whose keys differ is refused with the missing and unexpected keys, whatever `force` says."""
    state = small_net().state_dict()
    state.pop("fc.bias")
    state["linear.weight"] = torch.zeros(10, 64)
    path = write_teacher_file(tmp_path / "ckpt_epoch_240.pth", state)
    with pytest.raises(CheckpointError, match=r"missing keys 1 \(fc\.bias\), unexpected keys 1 \(linear\.weight\)"):
        load_pretrained(small_net(), path)
    with pytest.raises(CheckpointError, match="force=True would have loaded it partially"):
        load_pretrained(small_net(), path, force=True)


def test_wrong_architecture_and_shape_are_errors(tmp_path: Path) -> None:
    """A RepDistiller resnet56 file does not load into RN8; a wrong width is a shape error; junk is refused."""
    path = write_teacher_file(tmp_path / "rn56.pth", repdistiller_state("resnet56_vanilla"))
    with pytest.raises(CheckpointError, match=r"missing keys none, unexpected keys 288 \(layer1\.1\.conv1\.weight, "):
        load_pretrained(small_net(), path)
    state = small_net().state_dict()
    state["fc.weight"] = torch.zeros(100, 64)
    path = write_teacher_file(tmp_path / "shape.pth", state)
    with pytest.raises(CheckpointError, match=r"1 shape mismatches.*fc\.weight \(100, 64\) vs \(10, 64\)"):
        load_pretrained(small_net(), path)
    torch.save({"epoch": 3}, tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="no 'network' or 'model' state_dict"):
        load_pretrained(small_net(), tmp_path / "nostate.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_pretrained(small_net(), tmp_path / "junk.pth")


@pytest.mark.gpu
def test_cuda_saved_teacher_loads_on_cpu(tmp_path: Path) -> None:
    """Files saved from CUDA tensors (the released teachers) load onto a CPU model."""
    source = small_net().cuda()
    path = write_teacher_file(tmp_path / "cuda.pth", source.state_dict())
    target = small_net()
    load_pretrained(target, path)
    for key, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[key].cpu()), key
