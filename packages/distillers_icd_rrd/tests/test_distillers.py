"""Parity of every distillation loss with the original giakoumoglou/distillers@e24898d (golden fixtures).

Each `case_*` builds seeded inputs and seeded module weights, runs one loss (or two consecutive steps for the stateful
CRD memory and RRD queue) on the classes in `lib`, and returns named arrays: values, gradients w.r.t. the student
inputs and w.r.t. every trainable parameter, and buffer contents. The fixture recorder ran the same `case_*` functions
with `lib` built from the original modules (see fixtures/distillers/README.md); the tests run them on this package.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from distillers_icd_rrd import distillers as D
from distillers_icd_rrd.distillers import CRD, ICD, RRD, registry
from distillers_icd_rrd.models import util as U
from kdrepro_shared.errors import KdReproError

GOLDEN = Path(__file__).parent / "fixtures" / "distillers" / "losses.npz"
RTOL, ATOL = 1e-4, 1e-6
Arrays = dict[str, np.ndarray]


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


def maps(seed: int, shapes: list[tuple[int, ...]], grad: bool = False) -> list[torch.Tensor]:
    """A list of seeded feature maps (leaf tensors requiring grad for the student side)."""
    return [randn(seed + i, *s).requires_grad_(grad) for i, s in enumerate(shapes)]


S_SHAPES = [(4, 8, 8, 8), (4, 16, 4, 4), (4, 32, 2, 2)]  # student maps
T_SAME = S_SHAPES  # teacher maps of the same shapes
T_MIX = [(4, 8, 16, 16), (4, 16, 4, 4), (4, 32, 1, 1)]  # teacher larger, equal, smaller spatially (both pool branches)
T_WIDE = [(4, 16, 8, 8), (4, 32, 4, 4), (4, 64, 2, 2)]  # teacher with twice the channels (connectors, VID, FT)


def collect(out: Arrays, prefix: str, loss: torch.Tensor, inputs: dict[str, torch.Tensor], *mods: nn.Module) -> None:
    """Backward `loss` and store its value, input gradients and the named parameter gradients (None → absent)."""
    for m in mods:
        for p in m.parameters():
            p.grad = None
    loss.backward()
    out[f"{prefix}loss"] = loss.detach().numpy()
    for name, x in inputs.items():
        if x.grad is not None:
            out[f"{prefix}grad/{name}"] = x.grad.numpy().copy()
            x.grad = None
    for i, m in enumerate(mods):
        for key, p in m.named_parameters():
            if p.grad is not None:
                out[f"{prefix}grad/m{i}.{key}"] = p.grad.numpy().copy()


def case_kd(lib: SimpleNamespace) -> Arrays:
    y_s, y_t = randn(1, 8, 10).requires_grad_(), randn(2, 8, 10)
    out: Arrays = {}
    collect(out, "", lib.DistillKL(4)(y_s, y_t), {"y_s": y_s})
    return out


def case_hint(lib: SimpleNamespace) -> Arrays:
    """ConvReg (train mode) + HintLoss for the three ConvReg branches: stride-2, transposed, valid conv."""
    out: Arrays = {}
    for tag, s_shape, t_shape in [
        ("down", (4, 16, 8, 8), (4, 8, 4, 4)),
        ("up", (4, 16, 4, 4), (4, 8, 8, 8)),
        ("valid", (4, 16, 5, 5), (4, 8, 3, 3)),
    ]:
        f_s, f_t = randn(3, *s_shape).requires_grad_(), randn(4, *t_shape)
        reg = seeded_fill_(lib.ConvReg(s_shape, t_shape))
        collect(out, f"{tag}/", lib.HintLoss()(reg(f_s), f_t), {"f_s": f_s}, reg)
    return out


def _map_loss(lib_loss: Callable, t_shapes: list[tuple[int, ...]]) -> Arrays:
    g_s, g_t = maps(10, S_SHAPES, grad=True), maps(20, t_shapes)
    losses = lib_loss(g_s, g_t)
    out: Arrays = {f"layer{i}": loss.detach().numpy() for i, loss in enumerate(losses)}
    collect(out, "", sum(losses), {f"g_s{i}": x for i, x in enumerate(g_s)})
    return out


def case_attention(lib: SimpleNamespace) -> Arrays:
    return _map_loss(lib.Attention(), T_MIX)


def case_nst(lib: SimpleNamespace) -> Arrays:
    return _map_loss(lib.NSTLoss(), T_MIX)


def case_similarity(lib: SimpleNamespace) -> Arrays:
    return _map_loss(lambda g_s, g_t: lib.Similarity()(g_s[-1:], g_t[-1:]), T_SAME)


def case_kdsvd(lib: SimpleNamespace) -> Arrays:
    return _map_loss(lib.KDSVD(), T_SAME)


def case_fsp(lib: SimpleNamespace) -> Arrays:
    return _map_loss(lib.FSP(S_SHAPES, T_SAME), T_SAME)


def case_vector_losses(lib: SimpleNamespace) -> Arrays:
    """RKD and PKT on (B, d) features (PKT also on ReLU'd features, with exact zero rows → the NaN guard)."""
    out: Arrays = {}
    f_t = randn(31, 8, 32)
    for tag, loss_fn in [("rkd", lib.RKDLoss()), ("pkt", lib.PKT())]:
        f_s = randn(30, 8, 32).requires_grad_()
        collect(out, f"{tag}/", loss_fn(f_s, f_t), {"f_s": f_s})
    f_s = randn(30, 8, 32)
    f_s[0] = -1.0
    f_s.requires_grad_()
    collect(out, "pkt_relu/", lib.PKT()(f_s.relu(), f_t.relu()), {"f_s": f_s})
    return out


def case_correlation(lib: SimpleNamespace) -> Arrays:
    """CC with the train script's LinearEmbed heads on both sides (both trained)."""
    f_s, f_t = randn(40, 8, 32).requires_grad_(), randn(41, 8, 48)
    embed_s, embed_t = seeded_fill_(lib.LinearEmbed(32, 16)), seeded_fill_(lib.LinearEmbed(48, 16))
    out: Arrays = {}
    collect(out, "", lib.Correlation()(embed_s(f_s), embed_t(f_t)), {"f_s": f_s}, embed_s, embed_t)
    return out


def case_vid(lib: SimpleNamespace) -> Arrays:
    """One VIDLoss(s_C, t_C, t_C) per layer, summed, as `--distill vid` builds them; plus the log_scale init."""
    g_s, g_t = maps(50, S_SHAPES, grad=True), maps(60, T_WIDE)
    vids = nn.ModuleList([lib.VIDLoss(s[1], t[1], t[1]) for s, t in zip(S_SHAPES, T_WIDE, strict=True)])
    out: Arrays = {"log_scale_init": vids[0].log_scale.detach().numpy().copy()}
    seeded_fill_(vids)
    loss = sum(v(s, t) for v, s, t in zip(vids, g_s, g_t, strict=True))
    collect(out, "", loss, {f"g_s{i}": x for i, x in enumerate(g_s)}, vids)
    return out


def case_abound(lib: SimpleNamespace) -> Arrays:
    """AB: Connector (ConvReg without ReLU where shapes differ, train mode) then ABLoss(3) on pre-activations."""
    s_shapes = [(4, 8, 8, 8), (4, 16, 4, 4), (4, 32, 2, 2)]
    t_shapes = [(4, 8, 8, 8), (4, 32, 4, 4), (4, 32, 1, 1)]
    g_s, g_t = maps(70, s_shapes, grad=True), maps(80, t_shapes)
    connector = seeded_fill_(lib.Connector(s_shapes, t_shapes))
    losses = lib.ABLoss(3)(connector(g_s), g_t)
    out: Arrays = {f"layer{i}": loss.detach().numpy() for i, loss in enumerate(losses)}
    collect(out, "", sum(losses), {f"g_s{i}": x for i, x in enumerate(g_s)}, connector)
    return out


def case_factor(lib: SimpleNamespace) -> Arrays:
    """FT: the paraphraser's init-stage reconstruction loss, then the main loss through Translator (train mode)."""
    s_shape, t_shape = S_SHAPES[-2], T_WIDE[-2]
    f_s, f_t = randn(90, *s_shape).requires_grad_(), randn(91, *t_shape).requires_grad_()
    paraphraser = seeded_fill_(lib.Paraphraser(t_shape))
    translator = seeded_fill_(lib.Translator(s_shape, t_shape))
    out: Arrays = {}
    _, rec = paraphraser(f_t)
    collect(out, "init/", nn.MSELoss()(rec, f_t), {"f_t": f_t}, paraphraser)
    paraphraser.eval()
    factor_t = paraphraser(f_t.detach(), is_factor=True)
    collect(out, "main/", lib.FactorTransfer()(translator(f_s), factor_t), {"f_s": f_s}, translator, paraphraser)
    return out


def case_icd(lib: SimpleNamespace) -> Arrays:
    """ICD: gradients of f_s, both heads, τ and b; second pass with tau = 3 (exp(3) > max_tau → τ clamped)."""
    opt = SimpleNamespace(s_dim=32, t_dim=48, feat_dim=16)
    out: Arrays = {}
    for tag, tau in [("free", None), ("clamped", 3.0)]:
        f_s, f_t = randn(100, 8, 32).requires_grad_(), randn(101, 8, 48)
        icd = seeded_fill_(lib.ICDLoss(opt))
        if tau is not None:
            with torch.no_grad():
                icd.params.tau.fill_(tau)
        collect(out, f"{tag}/", icd(f_s, f_t), {"f_s": f_s}, icd)
    out["keys"] = np.array(sorted(icd.state_dict()))
    return out


def case_crd(lib: SimpleNamespace) -> Arrays:
    """CRD: two steps; step 1 with given contrast indices (sets Z), step 2 drawing them from the seeded sampler."""
    opt = SimpleNamespace(s_dim=32, t_dim=48, feat_dim=16, nce_k=8, nce_t=0.07, nce_m=0.5, n_data=40)
    crd = seeded_fill_(lib.CRDLoss(opt))
    stdv = 1.0 / (16 / 3) ** 0.5
    crd.contrast.memory_v1.copy_(torch.rand(40, 16, generator=torch.Generator().manual_seed(110)) * 2 * stdv - stdv)
    crd.contrast.memory_v2.copy_(torch.rand(40, 16, generator=torch.Generator().manual_seed(111)) * 2 * stdv - stdv)
    out: Arrays = {"keys": np.array(sorted(crd.state_dict()))}
    for step in (1, 2):
        f_s, f_t = randn(120 + step, 4, 32).requires_grad_(), randn(130 + step, 4, 48)
        idx = torch.randperm(40, generator=torch.Generator().manual_seed(140 + step))[:4]
        if step == 1:
            contrast_idx = torch.randint(0, 40, (4, 9), generator=torch.Generator().manual_seed(150))
            contrast_idx[:, 0] = idx
        else:
            contrast_idx = None
            torch.manual_seed(160)  # the alias sampler draws from the global generator
        collect(out, f"step{step}/", crd(f_s, f_t, idx, contrast_idx), {"f_s": f_s}, crd)
        for name in ("params", "memory_v1", "memory_v2"):
            out[f"step{step}/{name}"] = getattr(crd.contrast, name).detach().numpy().copy()
    return out


def case_alias(lib: SimpleNamespace) -> Arrays:
    """Alias tables for a non-uniform distribution and for CRD's uniform one, and seeded draws."""
    out: Arrays = {}
    for tag, probs in [("skewed", torch.tensor([5.0, 1.0, 0.5, 3.0, 0.25, 2.0, 7.0])), ("uniform", torch.ones(1000))]:
        sampler = lib.AliasMethod(probs.clone())
        out[f"{tag}/prob"] = sampler.prob.numpy().copy()
        out[f"{tag}/alias"] = sampler.alias.numpy().copy()
        torch.manual_seed(170)
        out[f"{tag}/draw"] = sampler.draw(64).numpy()
    return out


def case_rrd(lib: SimpleNamespace) -> Arrays:
    """RRD: three steps with B=8 and K=16 (the pointer wraps once); queue and pointer after each step."""
    opt = SimpleNamespace(s_dim=32, t_dim=48, feat_dim=16, nce_k=16, nce_t_s=0.04, nce_t_t=0.1)
    rrd = seeded_fill_(lib.RRDLoss(opt))
    rrd.queue = torch.nn.functional.normalize(randn(180, 16, 16), dim=0)
    out: Arrays = {"keys": np.array(sorted(rrd.state_dict()))}
    for step in (1, 2, 3):
        f_s, f_t = randn(190 + step, 8, 32).requires_grad_(), randn(200 + step, 8, 48)
        collect(out, f"step{step}/", rrd(f_s, f_t), {"f_s": f_s}, rrd)
        out[f"step{step}/queue"] = rrd.queue.detach().numpy().copy()
        out[f"step{step}/queue_ptr"] = rrd.queue_ptr.numpy().copy()
    return out


CASES: dict[str, Callable[[SimpleNamespace], Arrays]] = {
    name[len("case_") :]: fn for name, fn in globals().items() if name.startswith("case_")
}

NEW_LIB = SimpleNamespace(
    **{name: getattr(D, name) for name in D.__all__},
    ConvReg=U.ConvReg,
    Connector=U.Connector,
    LinearEmbed=U.LinearEmbed,
    Paraphraser=U.Paraphraser,
    Translator=U.Translator,
    AliasMethod=CRD.AliasMethod,
)


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return dict(data)


@pytest.mark.parity
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_matches_original(case: str, golden: dict[str, np.ndarray]) -> None:
    """Values, gradients and buffers of the case equal the original's (rtol 1e-4, atol 1e-6)."""
    expected = {k.split("::", 1)[1]: v for k, v in golden.items() if k.split("::", 1)[0] == case}
    assert expected
    got = CASES[case](NEW_LIB)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if value.dtype.kind in "iuU":
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)


def test_rrd_teacher_head_gets_no_gradient_and_queue_has_no_graph() -> None:
    """embed_t.grad stays None (the teacher head keeps its random projection); the queue stays a graph-free buffer."""
    rrd = RRD.RRDLoss(SimpleNamespace(s_dim=32, t_dim=48, feat_dim=16, nce_k=16, nce_t_s=0.04, nce_t_t=0.1))
    for step in range(3):
        rrd(randn(step, 8, 32).requires_grad_(), randn(10 + step, 8, 48)).backward()
    assert rrd.embed_t.linear.weight.grad is None
    assert rrd.embed_s.linear.weight.grad is not None
    assert rrd.queue.grad_fn is None
    assert "queue" in dict(rrd.named_buffers())
    assert int(rrd.queue_ptr) == 8
    with pytest.raises(AssertionError):
        rrd(randn(0, 3, 32), randn(1, 3, 48))  # K % B != 0


def test_rrd_initial_queue_has_unit_columns() -> None:
    rrd = RRD.RRDLoss(SimpleNamespace(s_dim=4, t_dim=4, feat_dim=16, nce_k=64, nce_t_s=0.04, nce_t_t=0.1))
    assert torch.allclose(rrd.queue.norm(dim=0), torch.ones(16))
    assert D.RCDLoss is D.RRDLoss


def test_icd_bias_gradient_vanishes_and_state_keys() -> None:
    """A scalar b shifts every logit equally, so both softmaxes ignore it; the keys match the original's."""
    icd = ICD.ICDLoss(SimpleNamespace(s_dim=32, t_dim=48, feat_dim=16))
    icd(randn(0, 8, 32), randn(1, 8, 48)).backward()
    assert abs(float(icd.params.b.grad)) < 1e-6
    assert list(icd.state_dict()) == [
        "params.tau",
        "params.b",
        "embed_s.linear.weight",
        "embed_s.linear.bias",
        "embed_t.linear.weight",
        "embed_t.linear.bias",
    ]


def test_crd_memory_sampler_runs_on_cpu_and_sets_z_once() -> None:
    """The alias sampler needs no CUDA; Z_v1/Z_v2 are set on the first call only."""
    crd = CRD.CRDLoss(SimpleNamespace(s_dim=8, t_dim=8, feat_dim=4, nce_k=5, nce_t=0.07, nce_m=0.5, n_data=20))
    idx = torch.arange(3)
    crd(randn(0, 3, 8), randn(1, 3, 8), idx)
    z = crd.contrast.params[2:4].clone()
    assert (z > 0).all()
    crd(randn(2, 3, 8), randn(3, 3, 8), idx)
    assert torch.equal(crd.contrast.params[2:4], z)
    assert crd.contrast.params.grad_fn is None
    assert torch.allclose(crd.contrast.memory_v1[:3].norm(dim=1), torch.ones(3))


def test_registry_names_and_unknown_name() -> None:
    names = registry.get_distiller_names()
    assert names == [
        "kd", "hint", "attention", "similarity", "correlation", "vid", "crd", "kdsvd",
        "fsp", "rkd", "pkt", "abound", "factor", "nst", "icd", "rrd",
    ]  # fmt: skip
    assert registry.get_distiller("icd") is D.ICDLoss
    assert registry.get_distiller("abound") is D.ABLoss
    with pytest.raises(KdReproError, match=r"unknown --distill 'rcd'; choose one of: kd, hint, .*, rrd$") as err:
        registry.get_distiller("rcd")
    assert "\n" not in str(err.value)


def test_shared_heads_are_one_class() -> None:
    """CRD and RRD reuse models.util's Embed/Normalize; ICD's head differs only in its submodule name."""
    assert CRD.Embed is RRD.Embed is U.Embed
    assert CRD.Normalize is RRD.Normalize is ICD.Normalize is U.Normalize
    assert [n for n, _ in ICD.Embed(4, 2).named_modules()] == ["", "linear", "norm"]
    assert [n for n, _ in U.Embed(4, 2).named_modules()] == ["", "linear", "l2norm"]


def test_vid_log_scale_init_is_bit_exact() -> None:
    """log(exp(5 − 1e-5) − 1) in float64, rounded once to float32 (spec §11.5: 4.993229)."""
    assert D.VIDLoss(4, 4, 3).log_scale.tolist() == [4.993229389190674] * 3
