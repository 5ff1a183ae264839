"""Parity of `models/util.py` with the original giakoumoglou/distillers@e24898d (golden fixtures).

Two kinds of cases, recorded from the original classes by running these same functions (fixtures/distillers/README.md):
* `PAIR_MODULES`: for the teacher → student pairs of the paper tables, the (key, shape) lists of every auxiliary module
  the train script builds (ConvReg for `hint`, Connector for `abound`, Paraphraser/Translator for `factor`, LinearEmbed
  for `correlation`, the VIDLoss list for `vid`), from the feature shapes the original models produced;
* `case_*`: forward outputs (train and eval mode) and BN running statistics on seeded inputs with seeded weights.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from distillers_icd_rrd.distillers import VIDLoss
from distillers_icd_rrd.models import util as U
from kdrepro_shared.errors import KdReproError

FIXTURES = Path(__file__).parent / "fixtures" / "distillers"
RTOL, ATOL = 1e-4, 1e-6
Arrays = dict[str, np.ndarray]
Shape = list[int]


def seeded_fill_(module: nn.Module) -> nn.Module:
    """Fill every parameter from a generator seeded by crc32 of its state_dict key: U(−1, 1)/√fan_in."""
    with torch.no_grad():
        for key, p in module.named_parameters():
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / fan_in**0.5)
    return module


def randn(seed: int, *shape: int) -> torch.Tensor:
    """Standard normal tensor from its own seeded generator."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def key_shapes(module: nn.Module) -> list[list]:
    """[key, shape] for every state_dict entry, in registration order."""
    return [[k, list(v.shape)] for k, v in module.state_dict().items()]


def pair_modules(util: ModuleType, vid: type[nn.Module], feat_s: list[Shape], feat_t: list[Shape]) -> dict:
    """Key/shape lists of the auxiliary modules `train_student.py` builds from the probe feature shapes."""
    return {
        "hint_ConvReg": key_shapes(util.ConvReg(feat_s[2], feat_t[2])),
        "abound_Connector": key_shapes(util.Connector(feat_s[1:-1], feat_t[1:-1])),
        "factor_Paraphraser": key_shapes(util.Paraphraser(feat_t[-2])),
        "factor_Translator": key_shapes(util.Translator(feat_s[-2], feat_t[-2])),
        "correlation_LinearEmbed_s": key_shapes(util.LinearEmbed(feat_s[-1][1], 128)),
        "correlation_LinearEmbed_t": key_shapes(util.LinearEmbed(feat_t[-1][1], 128)),
        "vid": key_shapes(
            nn.ModuleList([vid(s[1], t[1], t[1]) for s, t in zip(feat_s[1:-1], feat_t[1:-1], strict=True)])
        ),
    }


def _train_eval(out: Arrays, tag: str, module: nn.Module, x: torch.Tensor, **kwargs: bool) -> None:
    """Outputs in train mode, the BN buffers it updated, then outputs in eval mode."""
    module.train()
    res = module(x.clone(), **kwargs)
    for i, r in enumerate(res if isinstance(res, tuple | list) else [res]):
        out[f"{tag}/train{i}"] = r.detach().numpy()
    for key, buf in module.state_dict().items():
        if "running" in key:
            out[f"{tag}/{key}"] = buf.numpy().copy()
    module.eval()
    res = module(x.clone(), **kwargs)
    for i, r in enumerate(res if isinstance(res, tuple | list) else [res]):
        out[f"{tag}/eval{i}"] = r.detach().numpy()


def case_resnet32x4_resnet8x4(util: ModuleType) -> Arrays:
    """The modules of the script's pair (hint layer 2: 128×16×16 both; feat[-2]: 256×8×8) on 2×2 / 4×4 inputs."""
    out: Arrays = {}
    _train_eval(out, "ConvReg", seeded_fill_(util.ConvReg([2, 128, 16, 16], [2, 128, 16, 16])), randn(1, 2, 128, 4, 4))
    paraphraser = seeded_fill_(util.Paraphraser([2, 256, 8, 8]))
    _train_eval(out, "Paraphraser", paraphraser, randn(2, 2, 256, 2, 2))
    _train_eval(out, "Paraphraser_factor", paraphraser, randn(2, 2, 256, 2, 2), is_factor=True)
    translator = seeded_fill_(util.Translator([2, 256, 8, 8], [2, 256, 8, 8]))
    _train_eval(out, "Translator", translator, randn(3, 2, 256, 2, 2))
    _train_eval(out, "LinearEmbed", seeded_fill_(util.LinearEmbed(256, 128)), randn(4, 2, 256))
    shapes = [[2, 64, 32, 32], [2, 128, 16, 16], [2, 256, 8, 8]]
    connector = util.Connector(shapes, shapes)
    out["Connector/identity"] = np.array([len(c.state_dict()) == 0 for c in connector.connectors])
    return out


def case_conv_regs(util: ModuleType) -> Arrays:
    """ConvReg's transposed (resnet32x4→ShuffleV2 hint) and strided branches, and a non-identity Connector."""
    out: Arrays = {}
    _train_eval(out, "up", seeded_fill_(util.ConvReg([2, 232, 8, 8], [2, 128, 16, 16])), randn(5, 2, 232, 2, 2))
    _train_eval(
        out, "down", seeded_fill_(util.ConvReg([2, 16, 8, 8], [2, 8, 4, 4], use_relu=False)), randn(6, 2, 16, 8, 8)
    )
    s_shapes, t_shapes = [[2, 16, 8, 8], [2, 32, 4, 4]], [[2, 16, 8, 8], [2, 64, 4, 4]]
    connector = seeded_fill_(util.Connector(s_shapes, t_shapes))
    g_s = [randn(7, *s_shapes[0]), randn(8, *s_shapes[1])]
    for mode in ("train", "eval"):
        getattr(connector, mode)()
        for i, o in enumerate(connector(g_s)):
            out[f"Connector/{mode}{i}"] = o.detach().numpy()
    return out


def case_embeds(util: ModuleType) -> Arrays:
    """Regress, Embed, MLPEmbed, Normalize and Flatten on (B, C, H, W) inputs (all flatten first)."""
    x = randn(9, 4, 2, 4, 4)
    out: Arrays = {}
    for name in ("Regress", "Embed", "MLPEmbed"):
        out[name] = seeded_fill_(getattr(util, name)(32, 16))(x.clone()).detach().numpy()
    out["Normalize"] = util.Normalize(2)(x.view(4, -1)).numpy()
    out["Normalize_p3"] = util.Normalize(3)(x.view(4, -1).abs()).numpy()
    out["Flatten"] = util.Flatten()(x).numpy()
    return out


def case_pool_embed(util: ModuleType) -> Arrays:
    """PoolEmbed for every layer and both pool types, on maps of the WRN-style sizes it expects."""
    inputs = {0: (16, 16), 1: (16, 16), 2: (32, 8), 3: (64, 8), 4: (64, 1)}
    out: Arrays = {}
    for layer, (c, h) in inputs.items():
        x = randn(10 + layer, 3, c, h, h) if layer < 4 else randn(10 + layer, 3, c)
        for pool in ("avg", "max"):
            embed = seeded_fill_(util.PoolEmbed(layer=layer, dim_out=8, pool_type=pool))
            out[f"layer{layer}/{pool}/keys"] = np.array(list(embed.state_dict()))
            out[f"layer{layer}/{pool}"] = embed(x).detach().numpy()
    return out


def case_connector_v2(util: ModuleType) -> Arrays:
    """ConnectorV2's own init (He-normal conv from the global generator, BN 1/0) and forward."""
    s_shapes, t_shapes = [[2, 8, 4, 4], [2, 16, 2, 2]], [[2, 16, 4, 4], [2, 32, 2, 2]]
    torch.manual_seed(20)
    connector = util.ConnectorV2(s_shapes, t_shapes)
    out: Arrays = {k: v.numpy().copy() for k, v in connector.state_dict().items()}
    for i, o in enumerate(connector([randn(21, *s_shapes[0]), randn(22, *s_shapes[1])])):
        out[f"out{i}"] = o.detach().numpy()
    return out


CASES: dict[str, Callable[[ModuleType], Arrays]] = {
    name[len("case_") :]: fn for name, fn in globals().items() if name.startswith("case_")
}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "util.npz") as data:
        return dict(data)


@pytest.mark.parity
@pytest.mark.parametrize("case", sorted(CASES))
def test_util_outputs_match_original(case: str, golden: dict[str, np.ndarray]) -> None:
    """Outputs and BN running statistics equal the original's (rtol 1e-4, atol 1e-6); string/bool arrays exactly."""
    expected = {k.split("::", 1)[1]: v for k, v in golden.items() if k.split("::", 1)[0] == case}
    assert expected
    got = CASES[case](U)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if value.dtype.kind in "biuU":
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)


PAIRS = json.loads((FIXTURES / "util_pairs.json").read_text())


@functools.cache
def built_pair_modules(pair: str) -> dict:
    """This package's modules for a recorded pair, built on the meta device (keys and shapes only, no allocation)."""
    with torch.device("meta"):
        return pair_modules(U, VIDLoss, PAIRS[pair]["feat_s"], PAIRS[pair]["feat_t"])


@pytest.mark.parity
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_train_script_modules_keys_and_shapes(pair: str) -> None:
    """For each paper pair, every auxiliary module has the original's state_dict keys and shapes, in order."""
    assert built_pair_modules(pair) == PAIRS[pair]["modules"]


# §4.9 of the spec: (FitNet ConvReg, AB connectors, VID list, FT translator + paraphraser) parameter counts
SPEC_COUNTS = {
    "wrn_40_2->wrn_16_2": (4_288, 0, 64_736, 775_488),
    "wrn_40_2->wrn_40_1": (2_240, 11_424, 53_984, 627_840),
    "resnet56->resnet20": (1_120, 0, 16_240, 194_208),
    "resnet110->resnet32": (1_120, 0, 16_240, 194_208),
    "resnet32x4->resnet8x4": (16_768, 0, 258_496, 3_099_264),
    "vgg13->vgg8": (66_304, 0, 1_820_032, 12_391_680),
    "vgg13->MobileNetV2": (4_864, 1_345_152, 1_325_952, 9_450_720),
    "ResNet50->MobileNetV2": (132_608, 6_221_056, 11_533_056, 143_278_560),
    "ResNet50->vgg8": (2_098_688, 12_070_144, 12_881_664, 148_652_544),
    "resnet32x4->ShuffleV1": (983_424, 5_162_304, 495_040, 11_616_960),
    "resnet32x4->ShuffleV2": (475_520, 2_495_808, 328_384, 4_687_344),
    "wrn_40_2->ShuffleV1": (491_712, 2_581_152, 204_512, 9_404_160),
}


@pytest.mark.parametrize("pair", sorted(SPEC_COUNTS))
def test_auxiliary_parameter_counts(pair: str) -> None:
    """Trainable-parameter counts of the modules built from the recorded probe shapes equal the spec's table."""
    mods = built_pair_modules(pair)

    def count(entries: list[list]) -> int:
        return sum(int(np.prod(s)) for k, s in entries if "running" not in k and "num_batches" not in k)

    got = (
        count(mods["hint_ConvReg"]),
        count(mods["abound_Connector"]),
        count(mods["vid"]),
        count(mods["factor_Paraphraser"]) + count(mods["factor_Translator"]),
    )
    assert got == SPEC_COUNTS[pair]


def test_convreg_unsupported_size_raises() -> None:
    """The original's `raise NotImplemented(...)` is a TypeError; here a one-line error says which shapes failed."""
    with pytest.raises(KdReproError, match="student map of size 4 to a larger teacher map of size 16"):
        U.ConvReg([2, 8, 4, 4], [2, 8, 16, 16])
    with pytest.raises(KdReproError, match=r"PoolEmbed supports layers .*, got 5"):
        U.PoolEmbed(layer=5)


def test_paraphraser_without_bn_has_empty_slots() -> None:
    """use_bn=False leaves empty Sequentials at the BN positions, so encoder keys exist only at 0, 3 and 6."""
    keys = [k for k, _ in key_shapes(U.Paraphraser([1, 8, 2, 2]))]
    assert keys == [f"{part}.{i}.{w}" for part in ("encoder", "decoder") for i in (0, 3, 6) for w in ("weight", "bias")]
