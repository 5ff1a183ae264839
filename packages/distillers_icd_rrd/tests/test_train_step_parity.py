"""One full `train_student` step per `--distill` vs the original giakoumoglou/distillers@e24898d (golden fixtures).

Every method runs with wrn_40_2 → wrn_16_2 (a pair all 16 methods support, FSP included), batch 8 on 32×32, the
§6.3 loss weights and SGD(lr 0.05, momentum 0.9, wd 5e-4) over the trainable list. The modules are built by this
package's `train_student.build_method` (abound/factor/fsp run one init-stage step through `pretrain.init` inside it)
and stepped by `loops.train_distill` on a one-batch loader. Weights come from `seeded_fill_` (a generator per
state_dict key), installed by wrapping the module classes `train_student` builds; the recorder (see
fixtures/train_step/README.md) wrapped the original's classes with the same `fill_factories`, ran the original
`train_student.main()` and recorded through the same `record_step` / `record_init` functions defined here.

The CIFAR transforms are checked against the original's pipeline output on a fixed image (exact equality).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn, optim

from distillers_icd_rrd import pretrain, train_student
from distillers_icd_rrd.datasets import get_cifar100_dataloaders, get_stl10_dataloaders
from distillers_icd_rrd.loops import train_distill
from distillers_icd_rrd.models import model_dict
from kdrepro_shared.data import write_fake_cifar, write_fake_stl10

FIXTURES = Path(__file__).parent / "fixtures" / "train_step"
TEACHER, STUDENT = "wrn_40_2", "wrn_16_2"
TEACHER_PATH = f"./save/models/{TEACHER}_vanilla/ckpt_epoch_240.pth"
BATCH, NCE_K, N_DATA, N_CLS = 8, 16, 64, 100
N_SAMPLES = 32
RTOL, ATOL = 1e-4, 1e-5
# (γ, α, β) of scripts/run_cifar_distill.sh (spec §6.3); rrd takes icd's weights (the seed script has no rrd line).
WEIGHTS: dict[str, tuple[float, float, float]] = {
    "kd": (0.1, 0.9, 0.0),
    "hint": (1, 0, 100),
    "attention": (1, 0, 1000),
    "similarity": (1, 0, 3000),
    "correlation": (1, 0, 0.02),
    "vid": (1, 0, 1),
    "rkd": (1, 0, 1),
    "pkt": (1, 0, 30000),
    "abound": (1, 0, 1),
    "factor": (1, 0, 200),
    "fsp": (1, 0, 50),
    "nst": (1, 0, 50),
    "crd": (1, 0, 0.8),
    "kdsvd": (1, 0, 1),
    "icd": (1, 0, 1),
    "rrd": (1, 0, 1),
}
METHODS = tuple(WEIGHTS)
TWO_STAGE = ("abound", "factor", "fsp")
# The classes `train_student` instantiates for the method modules, with the label their weights are seeded under.
FILLED_CLASSES = {
    "ConvReg": "regress",
    "LinearEmbed": "embed",
    "Connector": "connector",
    "Paraphraser": "paraphraser",
    "Translator": "translator",
    "VIDLoss": "vid",
    "CRDLoss": "crd",
    "RRDLoss": "rrd",
    "ICDLoss": "icd",
}
Record = dict[str, np.ndarray]


# ---------------------------------------------------------------- the recipe (shared with the fixture recorder)


def key_seed(key: str) -> int:
    """63-bit seed from a name (sha256, so it does not depend on PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Deterministic tensor for one key: BN stats/affine near their usual values, weights ~ N(0, 1/fan_in)."""
    g = torch.Generator().manual_seed(key_seed(key))
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1 and key.endswith("weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=g)
    if len(shape) <= 1:
        return 0.1 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))


def seeded_fill_(module: nn.Module, label: str) -> nn.Module:
    """Overwrite every float state entry of `module` from `fill_value(label.key)`; keep counters and CRD's params."""
    state = module.state_dict()
    filled = {
        key: value
        if not value.is_floating_point() or key.split(".")[-1] == "params"
        else fill_value(f"{label}.{key}", tuple(value.shape)).to(value.dtype)
        for key, value in state.items()
    }
    module.load_state_dict(filled, strict=True)
    return module


def fill_factories(classes: dict[str, Callable[..., nn.Module]]) -> dict[str, Callable[..., nn.Module]]:
    """Replacements for the method-module classes that seed-fill each instance as `{label}{n}` (n counts per label)."""
    counts: dict[str, int] = {}

    def factory(cls: Callable[..., nn.Module], label: str) -> Callable[..., nn.Module]:
        def build(*args: Any, **kwargs: Any) -> nn.Module:
            n = counts.get(label, 0)
            counts[label] = n + 1
            return seeded_fill_(cls(*args, **kwargs), f"{label}{n}")

        return build

    return {name: factory(cls, FILLED_CLASSES[name]) for name, cls in classes.items()}


def filled_model(build: Callable[..., nn.Module], label: str) -> nn.Module:
    """A 100-class model from `build` holding the deterministic weights of `label`."""
    return seeded_fill_(build(num_classes=N_CLS), label)


def fixed_batch(crd: bool) -> tuple[torch.Tensor, ...]:
    """(images, targets, index[, contrast_idx]): contrast_idx rows start with the item's index, then K others."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, 32, 32, generator=g)
    targets = torch.randint(0, N_CLS, (BATCH,), generator=g)
    index = torch.randperm(N_DATA, generator=g)[:BATCH]
    if not crd:
        return images, targets, index
    negatives = torch.stack([torch.randperm(N_DATA, generator=g)[:NCE_K] for _ in range(BATCH)])
    return images, targets, index, torch.cat([index[:, None], negatives], dim=1)


def argv(method: str) -> list[str]:
    """The train_student command line of one method's step."""
    gamma, alpha, beta = WEIGHTS[method]
    return [
        "--path_t", TEACHER_PATH, "--model_s", STUDENT, "--distill", method,
        "-r", str(gamma), "-a", str(alpha), "-b", str(beta),
        "--epochs", "1", "--init_epochs", "1", "--batch_size", str(BATCH), "--num_workers", "0",
        "--nce_k", str(NCE_K), "--print_freq", "1000",
    ]  # fmt: skip


def summarize(name: str, x: torch.Tensor) -> np.ndarray:
    """[Σx, Σ|x|, Σx², max|x|, then N_SAMPLES elements at indices seeded by `name`] in float64."""
    flat = x.detach().double().flatten().cpu()
    idx = torch.randint(0, flat.numel(), (N_SAMPLES,), generator=torch.Generator().manual_seed(key_seed(name)))
    stats = [flat.sum(), flat.abs().sum(), (flat * flat).sum(), flat.abs().max()]
    return np.concatenate([torch.stack(stats).numpy(), flat[idx].numpy()])


def summarize_state(prefix: str, module: nn.Module, out: Record) -> None:
    """Add the summary of every state entry of `module` under `prefix/key`."""
    for key, value in module.state_dict().items():
        out[f"{prefix}/{key}"] = summarize(f"{prefix}/{key}", value)


def _loss_total(output: Any) -> float:
    """A criterion's output as one number: lists of per-layer losses are summed, as the train loop does."""
    parts = output if isinstance(output, (list, tuple)) else [output]
    return float(sum(float(p.detach().sum()) for p in parts))


def hook_losses(modules: dict[str, nn.Module], values: dict[str, float]) -> list[Any]:
    """Forward hooks adding each call's loss to `values[name]`; a ModuleList is hooked through its children."""
    handles = []
    for name, module in modules.items():
        values[name] = 0.0
        targets = list(module) if isinstance(module, nn.ModuleList) else [module]

        def add(_m: nn.Module, _inp: Any, output: Any, name: str = name) -> None:
            values[name] += _loss_total(output)

        handles += [t.register_forward_hook(add) for t in targets]
    return handles


def record_init(  # noqa: PLR0917 (the seed's init() signature, plus the function and the record)
    init_fn: Callable[..., None],
    out: Record,
    model_s: nn.Module,
    model_t: nn.Module,
    init_modules: nn.ModuleList,
    criterion: nn.Module,
    train_loader: Any,
    logger: Any,
    opt: argparse.Namespace,
) -> None:
    """Run the init stage with `init_fn`; record its loss, the student and (abound/factor) the trained module."""
    values: dict[str, float] = {}
    handles = hook_losses({"init": criterion}, values)
    init_fn(model_s, model_t, init_modules, criterion, train_loader, logger, opt)
    for handle in handles:
        handle.remove()
    out["init/loss"] = np.array(values["init"])
    summarize_state("init/student", model_s, out)
    if opt.distill in ("abound", "factor"):
        summarize_state("init/module", init_modules[0], out)


def record_step(  # noqa: PLR0917 (the seed's train() signature, plus the function and the record)
    train_fn: Callable[..., tuple[Any, Any]],
    out: Record,
    epoch: int,
    train_loader: Any,
    module_list: nn.ModuleList,
    criterion_list: nn.ModuleList,
    optimizer: optim.Optimizer,
    opt: argparse.Namespace,
) -> tuple[Any, Any]:
    """Run one epoch with `train_fn`; record the loss terms, the result, SGD's step and every updated state."""
    values: dict[str, float] = {}
    handles = hook_losses(dict(zip(("cls", "div", "kd"), criterion_list, strict=True)), values)
    top1, loss = train_fn(epoch, train_loader, module_list, criterion_list, optimizer, opt)
    for handle in handles:
        handle.remove()
    for name, value in values.items():
        out[f"loss/{name}"] = np.array(value)
    out["loss/total"], out["top1"] = np.array(float(loss)), np.array(float(top1))
    params = optimizer.param_groups[0]["params"]
    out["param_shapes"] = np.array(json.dumps([list(p.shape) for p in params]))
    out["has_grad"] = np.array([p.grad is not None for p in params])
    for i, p in enumerate(params):
        if p.grad is not None:  # SGD's first-step momentum buffer: the gradient plus the weight decay term
            out[f"step/{i:03d}"] = summarize(f"step/{i:03d}", optimizer.state[p]["momentum_buffer"])
    summarize_state("student", module_list[0], out)
    for i, module in enumerate(module_list[1:-1], start=1):
        summarize_state(f"module{i}", module, out)
    summarize_state("criterion", criterion_list[2], out)
    return top1, loss


def transform_image() -> Image.Image:
    """The fixed 32×32 RGB image the transform parity runs on."""
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))


TRANSFORM_SEEDS = range(8)


# ---------------------------------------------------------------- this package's side


class _NullLogger:
    """Stands in for the SummaryWriter the init stage logs to."""

    def add_scalar(self, *_args: Any) -> None:
        """Drop the scalar."""


def run_step(method: str) -> Record:
    """Build and step `method` the way this package's train_student.main does; return the record."""
    out: Record = {}
    opt = train_student.parse_option(argv(method))
    model_t = filled_model(model_dict[TEACHER], "teacher")
    model_s = filled_model(model_dict[STUDENT], "student")
    data = torch.randn(2, 3, 32, 32)
    model_t.eval()
    model_s.eval()
    feat_t, _ = model_t(data, is_feat=True)
    feat_s, _ = model_s(data, is_feat=True)
    loader = [fixed_batch(method == "crd")]

    def run_init(init_modules: nn.ModuleList, criterion: nn.Module) -> None:
        """The init stage as main runs it, recorded."""
        record_init(pretrain.init, out, model_s, model_t, init_modules, criterion, loader, _NullLogger(), opt)

    criterion_kd, extra, extra_trainable = train_student.build_method(
        opt, (model_s, model_t), (feat_s, feat_t), N_DATA, run_init
    )
    module_list = nn.ModuleList([model_s, *extra])
    trainable_list = nn.ModuleList([model_s, *extra_trainable])
    criterion_list = nn.ModuleList([nn.CrossEntropyLoss(), train_student.DistillKL(opt.kd_T), criterion_kd])
    optimizer = optim.SGD(
        trainable_list.parameters(), lr=opt.learning_rate, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    module_list.append(model_t)
    record_step(train_distill, out, 1, loader, module_list, criterion_list, optimizer, opt)
    return out


@pytest.fixture(autouse=True)
def single_thread_cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One intra-op thread, and CPU even where CUDA exists (the fixtures are CPU float32)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    """The recorded arrays, keyed `<method>::<name>`."""
    with np.load(FIXTURES / "steps.npz") as data:
        return dict(data)


def assert_summary_close(name: str, got: np.ndarray, want: np.ndarray, scale_atol: bool = False) -> None:
    """Compare two summaries; with `scale_atol` the element tolerance scales with the tensor's max |x|."""
    total, abs_total, sumsq, maxabs = want[:4]
    atol = ATOL * max(maxabs, 1e-30) if scale_atol else ATOL
    assert got[0] == pytest.approx(total, abs=RTOL * abs_total + atol), f"{name}: sum"
    assert got[1] == pytest.approx(abs_total, rel=RTOL, abs=atol), f"{name}: sum |x|"
    assert got[2] == pytest.approx(sumsq, rel=2 * RTOL, abs=atol), f"{name}: sum x²"
    assert got[3] == pytest.approx(maxabs, rel=RTOL, abs=atol), f"{name}: max |x|"
    np.testing.assert_allclose(got[4:], want[4:], rtol=RTOL, atol=atol, err_msg=f"{name}: samples")


def assert_matches(got: Record, want: Record) -> None:
    """Same keys; exact param shapes and grad flags; losses and updated states within tolerance."""
    assert sorted(got) == sorted(want)
    assert str(got["param_shapes"]) == str(want["param_shapes"])
    np.testing.assert_array_equal(got["has_grad"], want["has_grad"])
    for key, value in want.items():
        if key.startswith(("loss/", "init/loss", "top1")):
            np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)
        elif key.startswith("step/"):
            assert_summary_close(key, got[key], value, scale_atol=True)
        elif key not in ("param_shapes", "has_grad"):
            assert_summary_close(key, got[key], value)


def _method_record(golden: dict[str, np.ndarray], method: str) -> Record:
    """The recorded arrays of one method, without the method prefix."""
    prefix = f"{method}::"
    return {k.removeprefix(prefix): v for k, v in golden.items() if k.startswith(prefix)}


@pytest.mark.parametrize("method", METHODS)
def test_one_train_step_matches_original(
    method: str, golden: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    classes = {name: getattr(train_student, name) for name in FILLED_CLASSES}
    for name, build in fill_factories(classes).items():
        monkeypatch.setattr(train_student, name, build)
    want = _method_record(golden, method)
    got = run_step(method)
    assert_matches(got, want)
    gamma, alpha, beta = WEIGHTS[method]
    expected_total = gamma * want["loss/cls"] + alpha * want["loss/div"] + beta * want["loss/kd"]
    assert float(got["loss/total"]) == pytest.approx(float(expected_total), rel=RTOL, abs=ATOL)
    assert 0.0 <= float(got["top1"]) <= 100.0
    assert ("init/loss" in got) == (method in TWO_STAGE)


def test_fixture_covers_every_method_with_real_values(golden: dict[str, np.ndarray]) -> None:
    assert {k.split("::")[0] for k in golden} - {"transforms"} == set(train_student.DISTILL_METHODS) == set(METHODS)
    for method in METHODS:
        rec = _method_record(golden, method)
        assert np.isfinite(rec["loss/total"]) and rec["loss/cls"] > 0 and rec["loss/div"] > 0
        method_free = method in ("kd", "abound", "fsp")
        assert (rec["loss/kd"] == 0) == method_free, method
    # The seed's RRD never gives its teacher head (the last two parameters) a gradient; every other one gets one.
    assert [m for m in METHODS if not _method_record(golden, m)["has_grad"].all()] == ["rrd"]
    assert _method_record(golden, "rrd")["has_grad"][-2:].tolist() == [False, False]


# ---------------------------------------------------------------- transforms


def test_cifar_and_stl10_transforms_equal_the_originals(golden: dict[str, np.ndarray], tmp_path: Path) -> None:
    write_fake_cifar(tmp_path, 100, n_train=100, n_test=100)
    write_fake_stl10(tmp_path)
    train_loader, test_loader = get_cifar100_dataloaders(8, 0, data_folder=str(tmp_path))
    stl_train, stl_test = get_stl10_dataloaders(8, 0, data_folder=str(tmp_path))
    image = transform_image()
    pipelines = {
        "cifar_train": train_loader.dataset.transform,
        "cifar_test": test_loader.dataset.transform,
        "stl10_train": stl_train.dataset.transform,
        "stl10_test": stl_test.dataset.transform,
    }
    for name, transform in pipelines.items():
        for seed in TRANSFORM_SEEDS if name.endswith("train") else [0]:
            torch.manual_seed(seed)
            got = transform(image)
            assert torch.equal(got, torch.from_numpy(golden[f"transforms::{name}/{seed}"])), f"{name} seed {seed}"
    for seed in TRANSFORM_SEEDS:  # the dataset items too: the fake data's bytes → PIL → the same pipeline
        torch.manual_seed(seed)
        assert torch.equal(train_loader.dataset[5][0], torch.from_numpy(golden[f"transforms::cifar_item5/{seed}"]))
    assert torch.equal(test_loader.dataset[3][0], torch.from_numpy(golden["transforms::cifar_test_item3"]))


def test_transform_fixture_exercises_the_random_crop_and_flip(golden: dict[str, np.ndarray]) -> None:
    crops = [golden[f"transforms::cifar_train/{seed}"] for seed in TRANSFORM_SEEDS]
    assert len({c.tobytes() for c in crops}) >= len(crops) - 2  # 81 crops × 2 flips: seeds rarely repeat one
    plain = golden["transforms::cifar_test/0"]
    # A flipped crop has its mirrored image in it; an unflipped one the image itself (both up to the 4-px shift).
    flips = {_is_flipped(c, plain) for c in crops}
    assert flips == {True, False}


def _is_flipped(crop: np.ndarray, plain: np.ndarray) -> bool:
    """Whether `crop` (a padded-and-cropped view) matches the mirrored `plain` image at some shift."""
    for source, flipped in ((plain, False), (plain[:, :, ::-1], True)):
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                shifted = source[:, 4 + dy : 28 + dy, 4 + dx : 28 + dx]
                if np.array_equal(crop[:, 4:28, 4:28], shifted):
                    return flipped
    raise AssertionError("crop matches no shift of the image")
