"""One letKD-1 and letKD-2 training step (and the evaluation step after it) vs the original.

Reference: adagorgun/letKD-framework @ 4fb2289, the paper configs as shipped (stored in the fixture), fake teacher,
k-means and LDA files from `letkd.testing`, deterministic weights, one SGD step at the epoch-0 LUT learning rate on
a fixed batch of 4 (see fixtures/train_step/README.md). Every record value, the learning rates, the sum and the
sum of squares of every updated state_dict entry, and a few whole tensors are compared.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from letkd.distillation.algorithms.classification import ClassificationQUESTValue, ClassificationSubQUESTValue
from letkd.distillation.architectures import factory
from letkd.testing import fill_deterministic, generator, write_fake_lda, write_fake_vq

FIXTURE = Path(__file__).parent / "fixtures" / "train_step" / "steps.json"
# case -> (algorithm class, (teacher hint channels, LDA rank) of the fake LDA files or None)
CASES = {
    "RN56_RN20_letKD-1": (ClassificationQUESTValue, None),
    "RN56_RN20_letKD-2": (ClassificationSubQUESTValue, (64, 64)),
    "WRN40w2_WRN16w2_letKD-2": (ClassificationSubQUESTValue, (128, 99)),
    "RN50_MNv2_letKD-2": (ClassificationSubQUESTValue, (2048, 99)),
}
pytestmark = pytest.mark.parity


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def build_algorithm(case: str, expected: dict, tmp_path: Path):
    """The algorithm of `case` on the stored config, with the fake teacher / VQ / LDA files and filled weights."""
    cls, lda = CASES[case]
    cfg = copy.deepcopy(expected["config"])
    cfg["exp_dir"] = str(tmp_path / "exp")
    nets = cfg["networks"]
    teacher_def = nets["teacher_net"]
    teacher = fill_deterministic(factory(teacher_def["def_file"], teacher_def["opt"]), "teacher")
    torch.save({"epoch": 240, "model": teacher.state_dict()}, tmp_path / "ckpt_epoch_240.pth")
    teacher_def["pretrained"] = str(tmp_path / "ckpt_epoch_240.pth")
    vq_opt = nets["vector_quantizer_target"]["opt"]
    write_fake_vq(tmp_path / "vq_net_epoch_.zip", vq_opt["num_embeddings"], vq_opt["embedding_dim"], cuda_saved=True)
    nets["vector_quantizer_target"]["pretrained"] = str(tmp_path / "vq_net_epoch*")
    if lda is not None:
        nets["valueLayer_0"]["opt"].update(write_fake_lda(tmp_path / "lda", *lda))
    alg = cls(cfg, None, None)
    alg.init_all_optimizers()
    for key, net in alg.networks.items():
        if alg.optimizers[key] is not None:
            fill_deterministic(net, key)
    return alg


def run_case(case: str, tmp_path: Path) -> None:
    expected = json.loads(FIXTURE.read_text())[case]
    alg = build_algorithm(case, expected, tmp_path)
    for key, net in alg.networks.items():
        net.train(alg.optimizers[key] is not None)
    alg.adjust_learning_rates(0)
    assert {key: opt.param_groups[0]["lr"] for key, opt in alg.optimizers.items() if opt} == expected["lr"]
    batch = (torch.randn(4, 3, 32, 32, generator=generator(100)), torch.tensor([0, 1, 2, 97]))
    record = alg.train_step(batch)
    assert list(record) == expected["record_keys"]
    assert record == pytest.approx(expected["train_record"], rel=1e-5, abs=1e-5)
    for key, summary in expected["summaries"].items():
        state = alg.networks[key].state_dict()
        assert sorted(k for k, v in state.items() if v.is_floating_point()) == sorted(summary), key
        for name, (total, squares) in summary.items():
            tensor = state[name].double()
            assert tensor.sum().item() == pytest.approx(total, rel=1e-5, abs=1e-4), f"{key}.{name}"
            assert (tensor**2).sum().item() == pytest.approx(squares, rel=1e-5, abs=1e-4), f"{key}.{name}"
        for name, values in expected["full"][key].items():
            torch.testing.assert_close(state[name].flatten(), torch.tensor(values), atol=1e-5, rtol=1e-5)
    for net in alg.networks.values():
        net.eval()
    assert alg.evaluation_step(batch) == pytest.approx(expected["eval_record"], rel=1e-5, abs=1e-5)
    alg.close()


@pytest.mark.parametrize("case", ["RN56_RN20_letKD-1", "RN56_RN20_letKD-2", "WRN40w2_WRN16w2_letKD-2"])
def test_step_matches_original(case: str, tmp_path: Path) -> None:
    run_case(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["RN50_MNv2_letKD-2"])
def test_cross_model_step_matches_original(case: str, tmp_path: Path) -> None:
    """RN50 → MobileNetV2: downscale, value ratios 0.2 / 0.1, the flattened MobileNetV2 stages."""
    run_case(case, tmp_path)
