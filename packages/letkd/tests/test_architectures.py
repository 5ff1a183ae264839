"""Parity of every config architecture and classifier head with the original letKD code (fixtures/architectures)."""

from __future__ import annotations

import copy
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures import available_architectures, factory
from letkd.distillation.architectures.feature_extractors.utils import SequentialFeatureExtractorAbstractClass
from letkd.distillation.architectures.tools import Conv2dCos, GlobalPooling, split_network

FIXTURES = Path(__file__).parent / "fixtures" / "architectures"
RECORD = json.loads((FIXTURES / "architectures.json").read_text())
ARRAYS = np.load(FIXTURES / "architectures_outputs.npz")
NETWORKS = {e["name"]: e for e in RECORD["networks"]}
HEADS = {e["name"]: e for e in RECORD["heads"]}
ATOL = 1e-5
RTOL = 1e-5


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The recorder's deterministic value of one state_dict entry, seeded by crc32(key)."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if key.endswith("num_batches_tracked"):
        return torch.tensor(7, dtype=torch.long)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=g) + 0.5
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if key.endswith("scale") and shape == (1,):
        return 2.0 + torch.rand(shape, generator=g)
    if len(shape) == 1:
        return (1.0 if key.endswith("weight") else 0.0) + 0.1 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))


def fill(model: nn.Module) -> nn.Module:
    """Load `fill_value` into every entry, strictly."""
    state = model.state_dict()
    model.load_state_dict({k: fill_value(k, tuple(v.shape)).to(v.dtype) for k, v in state.items()}, strict=True)
    return model


def summary(t: torch.Tensor, index: int) -> list[float]:
    """Sum, sum of squares and a seeded random projection, in float64 (the recorder's statistics)."""
    flat = t.detach().double().flatten()
    proj = torch.randn(flat.numel(), generator=torch.Generator().manual_seed(2000 + index), dtype=torch.float64)
    return [float(flat.sum()), float((flat * flat).sum()), float((flat * proj).sum())]


def samples(t: torch.Tensor, index: int, n: int = 256) -> np.ndarray:
    """The recorder's seeded sample of elements."""
    flat = t.detach().double().flatten()
    ids = torch.randint(0, flat.numel(), (n,), generator=torch.Generator().manual_seed(1000 + index))
    return flat[ids].numpy()


def assert_summary(actual: list[float], expected: list[float]) -> None:
    """Statistics agree to float32 accuracy relative to their magnitude."""
    scale = max(1.0, math.sqrt(abs(expected[1])))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


def shapes(state: dict[str, torch.Tensor]) -> list[list]:
    """[[key, shape], …] in order."""
    return [[k, list(v.shape)] for k, v in state.items()]


def build(entry: dict) -> nn.Module:
    """The network of a fixture entry, from the same def_file/opt the configs give."""
    return factory(entry["def_file"], copy.deepcopy(entry["opt"]))


@pytest.mark.parity
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_backbone_keys_init_and_split_match_original(name: str) -> None:
    """Full-model keys/shapes, parameter count, seeded initialisation and the split networks' keys."""
    entry = NETWORKS[name]
    torch.manual_seed(0)
    model = build(entry)
    state = model.state_dict()
    assert shapes(state) == entry["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == entry["n_params"]
    assert list(model._modules) == entry["children"]
    for key, (total, squares) in entry["init_stats_seed0"].items():
        value = state[key].double()
        assert float(value.sum()) == pytest.approx(total, rel=1e-5, abs=1e-4), key
        assert float((value * value).sum()) == pytest.approx(squares, rel=1e-5, abs=1e-4), key
    fe, clf = split_network(model, entry["opt"]["extract_from"], entry["opt"]["extract_after_relu"])
    assert len(fe) == entry["fe_len"]
    assert shapes(fe.state_dict()) == entry["fe_state_dict"]
    assert shapes(clf.state_dict()) == entry["clf_state_dict"]


@pytest.mark.parity
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_backbone_outputs_match_original(name: str) -> None:
    """Eval-mode output of every extractor entry and the logits; train-mode features and BN running stats."""
    entry = NETWORKS[name]
    model = fill(build(entry))
    fe, clf = split_network(model, entry["opt"]["extract_from"], entry["opt"]["extract_after_relu"])
    x = torch.from_numpy(ARRAYS["input"])
    fe.eval()
    clf.eval()
    with torch.no_grad():
        h = x
        for i, (module, recorded) in enumerate(zip(fe, entry["fe_children_eval"], strict=True)):
            h = module(h)
            assert list(h.shape) == recorded["shape"], i
            assert_summary(summary(h, i), recorded["stats"])
        np.testing.assert_allclose(samples(h, 0), ARRAYS[f"{name}/fe_eval_samples"], rtol=RTOL, atol=ATOL)
        if entry["logits_error"] is None:
            logits = clf(h)
            np.testing.assert_allclose(logits.double().numpy(), ARRAYS[f"{name}/logits_eval"], rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(model(x).numpy(), logits.numpy(), rtol=RTOL, atol=ATOL)
        else:  # resnet downscale: its 8×8 pool cannot take the 4×4 map, in the original as here
            with pytest.raises(RuntimeError, match="too small"):
                clf(h)
    fe.train()
    with torch.no_grad():
        h = fe(x)
    assert_summary(summary(h, 0), entry["fe_train_stats"])
    np.testing.assert_allclose(samples(h, 0), ARRAYS[f"{name}/fe_train_samples"], rtol=1e-4, atol=1e-4)
    buffers = {k: v for k, v in fe.state_dict().items() if "running" in k}
    assert sorted(buffers) == sorted(entry["fe_buffers_after_train"])
    for key, value in buffers.items():
        assert_summary(summary(value, 0), entry["fe_buffers_after_train"][key])


@pytest.mark.parity
@pytest.mark.parametrize("name", sorted(HEADS))
def test_classifier_heads_match_original(name: str) -> None:
    """BoW predictors of every config (cosine 1×1) and the linear head: keys, seeded init and outputs."""
    entry = HEADS[name]
    torch.manual_seed(0)
    head = build(entry)
    state = head.state_dict()
    assert shapes(state) == entry["state_dict"]
    for key, (total, squares) in entry["init_stats_seed0"].items():
        assert float(state[key].double().sum()) == pytest.approx(total, rel=1e-5, abs=1e-4), key
        assert float((state[key].double() ** 2).sum()) == pytest.approx(squares, rel=1e-5, abs=1e-4), key
    fill(head)
    in_shape = entry.get("in_shape", [2, entry["opt"]["num_channels"], 4, 4])
    feat = torch.randn(*in_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = head(feat)
    assert list(out.shape) == entry["out_shape"]
    assert_summary(summary(out, 0), entry["out_stats"])
    if f"{name}/out" in ARRAYS:
        np.testing.assert_allclose(out.double().numpy(), ARRAYS[f"{name}/out"], rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_allclose(samples(out, 0), ARRAYS[f"{name}/out_samples"], rtol=RTOL, atol=ATOL)


def test_conv2dcos_is_scaled_cosine() -> None:
    """Every score equals scale·cos(x(h, w), w_k), with the scale learnable or frozen as asked."""
    torch.manual_seed(0)
    layer = Conv2dCos(8, 5, scale=3.0, learn_scale=False)
    x = torch.randn(2, 8, 3, 3)
    expected = 3.0 * torch.nn.functional.cosine_similarity(
        x.unsqueeze(1), layer.weight.view(1, 5, 8, 1, 1), dim=2, eps=1e-12
    )
    np.testing.assert_allclose(layer(x).detach().numpy(), expected.detach().numpy(), atol=1e-5, rtol=1e-5)
    assert not layer.scale.requires_grad
    assert Conv2dCos(8, 5, scale=None).scale is None


def test_unknown_and_unported_names_raise_one_line_errors() -> None:
    """An unknown def_file lists the valid names; an original module without config says it is not ported."""
    with pytest.raises(KdReproError, match=r"unknown architecture 'feature_extractors\.resnet18'.*resnetv2") as err:
        factory("feature_extractors.resnet18", {})
    assert "\n" not in str(err.value)
    with pytest.raises(KdReproError, match="not ported"):
        factory("feature_extractors.VGG_ImageNet", {})
    with pytest.raises(KdReproError, match="unknown architecture"):
        factory("../tools", {})
    assert "feature_extractors.utils" not in available_architectures()


def test_bad_options_raise_one_line_errors() -> None:
    """Broken or impossible options of the original are refused with what is valid."""
    opt = {"depth": 20, "num_filters": [16, 16, 32, 64], "num_classes": 10}
    with pytest.raises(KdReproError, match="preact"):
        factory("feature_extractors.resnet", {**opt, "preact": True})
    with pytest.raises(KdReproError, match="6n\\+2"):
        factory("feature_extractors.resnet", {**opt, "depth": 21})
    with pytest.raises(KdReproError, match="6n\\+4"):
        factory("feature_extractors.wide_resnet", {"depth": 17, "num_classes": 10, "widen_Factor": 1})
    with pytest.raises(KdReproError, match="valid: linear, conv_cosine"):
        factory("classifiers.classifier", {"classifier_type": "mlp", "num_channels": 4, "num_classes": 2})
    with pytest.raises(KdReproError, match="valid: avg, max"):
        GlobalPooling("median")


def test_split_network_errors_and_wrn_without_pool() -> None:
    """Bad extraction points are named; WRN with pool=None has no gpool/reshape, like the original."""
    model = factory("feature_extractors.wide_resnet", {"depth": 16, "num_classes": 10, "widen_Factor": 1, "pool": None})
    assert "gpool" not in model._modules
    assert list(model._modules)[-1] == "fc"
    with pytest.raises(KdReproError, match=r"not a top-level child.*block3"):
        split_network(model, ["layer3"], [False])
    with pytest.raises(KdReproError, match="one extraction point"):
        split_network(model, ["block2", "block3"], [False, False])
    with pytest.raises(KdReproError, match="needs a ReLU"):
        split_network(model, ["fc"], [True])


def test_sequential_feature_extractor_returns_named_features() -> None:
    """Asked features come back in the asked order; one name gives a tensor; bad names are refused."""
    blocks = [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)]
    extractor = SequentialFeatureExtractorAbstractClass(["fc1", "relu", "fc2"], blocks)
    x = torch.randn(5, 3)
    hidden = blocks[1](blocks[0](x))
    last, first = extractor(x, ["fc2", "fc1"])
    assert torch.equal(first, blocks[0](x))
    assert torch.equal(last, blocks[2](hidden))
    assert torch.equal(extractor(x), blocks[2](hidden))
    assert [k.split(".")[0] for k in extractor.state_dict()] == ["_feature_blocks"] * 4
    with pytest.raises(KdReproError, match="does not exist"):
        extractor(x, ["fc3"])
    with pytest.raises(KdReproError, match="duplicate"):
        extractor(x, ["fc1", "fc1"])
