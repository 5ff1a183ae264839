"""torchrun DDP on CPU (gloo, 2 ranks): identical ranks, identical CRD memory / RRD queue, exact sharded evaluation.

Each run launches `torch.distributed.run` on a 100-image fake CIFAR-100 with a random resnet8 teacher; a small launcher
script records every rank's run state (student, heads, memory/queue) after the last epoch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from distillers_icd_rrd.datasets import get_cifar100_dataloaders
from distillers_icd_rrd.loops import validate
from distillers_icd_rrd.models import model_dict
from kdrepro_shared.data import write_fake_cifar

TEACHER = "save/models/resnet8_vanilla/ckpt_epoch_240.pth"
LAUNCHER = """
import sys, torch
import torch.distributed as dist
from distillers_icd_rrd import train_student

torch.set_num_threads(1)
train, validate, scores = train_student._train, train_student.validate, []

def recording(opt, loaders, training, optimizer, *, run_state, logger):
    train(opt, loaders, training, optimizer, run_state=run_state, logger=logger)
    torch.save({"state": run_state.state_dict(), "scores": scores}, f"rank{dist.get_rank()}.pt")

train_student._train = recording
train_student.validate = lambda *args: scores.append(validate(*args)) or scores[-1]
train_student.main(sys.argv[1:])
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CWD with the fake CIFAR-100, a random resnet8 teacher and the launcher script."""
    monkeypatch.chdir(tmp_path)
    write_fake_cifar(tmp_path / "data", 100, n_train=100, n_test=20)
    torch.manual_seed(0)
    (tmp_path / TEACHER).parent.mkdir(parents=True)
    torch.save({"model": model_dict["resnet8"](num_classes=100).state_dict()}, tmp_path / TEACHER)
    (tmp_path / "launch.py").write_text(LAUNCHER)
    return tmp_path


def _torchrun(workdir: Path, argv: list[str]) -> None:
    """Run the launcher on 2 CPU ranks under torchrun; fail with its output if it fails."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "launch.py"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*command, *argv], cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize(
    ("method", "buffers"),
    [("kd", ()), ("crd", ("memory_v1", "memory_v2")), pytest.param("rrd", ("queue",), marks=pytest.mark.slow)],
)
def test_two_rank_run_keeps_ranks_identical(workdir: Path, method: str, buffers: tuple[str, ...]) -> None:
    argv = [
        "--path_t",
        TEACHER,
        "--distill",
        method,
        "-a",
        "1",
        "-b",
        "1",
        "--nce_k",
        "64",
        "--distributed",
        "--epochs",
        "1",
    ]
    _torchrun(workdir, [*argv, "--batch_size", "16", "--num_workers", "0", "--save_freq", "1", "--device", "cpu"])
    _torchrun_checks(workdir, method, buffers)


def _torchrun_checks(workdir: Path, method: str, buffers: tuple[str, ...]) -> None:
    """Both ranks' states are equal, the memory/queue moved from its start, and the DDP eval is a full-set eval."""
    (rank0, scores0), (rank1, scores1) = (torch.load(workdir / f"rank{r}.pt").values() for r in (0, 1))
    assert all(
        torch.equal(torch.as_tensor(a), torch.as_tensor(b)) for a, b in zip(scores0[-1], scores1[-1], strict=True)
    )
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    for name in buffers:
        [key] = [k for k in rank0 if k.endswith(name)]
        assert rank0[key].abs().sum() > 0
    if method == "rrd":
        assert int(rank0[next(k for k in rank0 if k.endswith("queue_ptr"))]) == (100 // 16 * 16) % 64

    folder = next((workdir / "save/student/student_model").glob(f"{method.upper()}_*"))
    ckpt = torch.load(folder / "ckpt_epoch_1.pth")
    student = model_dict["resnet8"](num_classes=100)
    student.load_state_dict(ckpt["model"])
    assert all(torch.equal(v, rank0[f"0.0.{k}"]) for k, v in student.state_dict().items())
    torch.set_num_threads(1)
    _, val_loader = get_cifar100_dataloaders(batch_size=16, num_workers=0, data_folder="data")[:2]
    opt = type("Opt", (), {"print_freq": 1000, "device": "cpu"})()
    single = validate(val_loader, student, nn.CrossEntropyLoss(), opt)
    assert ckpt["accuracy"].item() == pytest.approx(single[0].item(), abs=1e-4)
    assert [float(v) for v in scores0[-1]] == pytest.approx([float(v) for v in single], abs=1e-4)
