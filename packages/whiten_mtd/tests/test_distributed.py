"""Two CPU processes (gloo): under torchrun and with the original `--world_size/--dist_url/--rank` flags.

A small program (written to tmp_path) runs the distillation loss through `whiten_mtd.distributed.launch` on a DDP
head: every rank must see W x the full-batch loss, and the DDP-averaged gradient must equal the single-process
gradient over the whole batch (what the loss's world-size factor is for).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kdrepro_shared.distributed import free_port, is_dist_avail_and_initialized
from kdrepro_shared.errors import KdReproError
from whiten_mtd.datasets.fake_gld import write_fake_gldv2
from whiten_mtd.distributed import given_on_command_line, launch, wrap_ddp
from whiten_mtd.loss import MultiTeacherDistillLoss
from whiten_mtd.models.fake_weights import write_fake_weights

PACKAGE = Path(__file__).resolve().parents[1]
PROGRAM = """
import argparse, sys
import torch
from torch import nn
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch, wrap_ddp
from whiten_mtd.loss import MultiTeacherDistillLoss


class TwoViews(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 8)

    def forward(self, x1, x2):
        return self.head(x1), self.head(x2)


def inputs():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    t1 = [torch.randn(6, 8, generator=g) for _ in range(2)]
    t2 = [t + 0.3 * torch.randn(6, 8, generator=g) for t in t1]
    return x1, x2, t1, t2


def worker(args, device):
    torch.manual_seed(1)
    model = wrap_ddp(TwoViews(), device)
    x1, x2, t1, t2 = inputs()
    rows = slice(3 * args.rank, 3 * args.rank + 3) if args.world_size == 2 else slice(0, 6)
    stu1, stu2 = model(x1[rows], x2[rows])
    loss = MultiTeacherDistillLoss(s=args.strategy, teachers=["a", "b"])(
        stu1, stu2, [t[rows] for t in t1], [t[rows] for t in t2])["distill loss"]
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": model.module.head.weight.grad, "rank": args.rank,
                "world_size": args.world_size}, f"{args.out}/rank{args.rank}.pt")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    add_distributed_args(parser, "tcp://localhost:2023")
    parser.add_argument("--out")
    parser.add_argument("--strategy", default="maxmin")
    argv = sys.argv[1:]
    launch(worker, parser.parse_args(argv), world_size_given=given_on_command_line(argv, "--world_size"))
"""


def _program_namespace() -> dict:
    """The program's classes and functions, defined in this process."""
    namespace: dict = {}
    exec(compile(PROGRAM.split('if __name__ == "__main__":', maxsplit=1)[0], "program", "exec"), namespace)
    return namespace


def _reference(strategy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and head gradient of one process over the full batch (no process group)."""
    namespace = _program_namespace()
    torch.manual_seed(1)
    model = namespace["TwoViews"]()
    x1, x2, t1, t2 = namespace["inputs"]()
    stu1, stu2 = model(x1, x2)
    loss = MultiTeacherDistillLoss(s=strategy, teachers=["a", "b"])(stu1, stu2, t1, t2)["distill loss"]
    loss.backward()
    return loss.detach(), model.head.weight.grad


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    return env


def _check(out: Path, strategy: str) -> None:
    ref_loss, ref_grad = _reference(strategy)
    for rank in (0, 1):
        got = torch.load(out / f"rank{rank}.pt", weights_only=True)
        assert (got["rank"], got["world_size"]) == (rank, 2)
        torch.testing.assert_close(got["loss"], 2 * ref_loss, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got["grad"], ref_grad, atol=1e-6, rtol=1e-5)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "program.py"
    path.write_text(PROGRAM)
    return path


def test_torchrun_two_cpu_processes(program: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    cmd += ["--master_port", str(free_port()), str(program), "--out", str(tmp_path), "--strategy", "maxmean"]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    _check(tmp_path, "maxmean")


def test_original_flags_two_nodes(program: Path, tmp_path: Path) -> None:
    """`--world_size 2 --rank r --dist_url tcp://...`: one process per CPU-only 'node', global rank = node rank."""
    flags = ["--dist_url", f"tcp://127.0.0.1:{free_port()}"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(program), "--out", str(tmp_path), "--world_size", "2", "--rank", str(rank), *flags],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    _check(tmp_path, "maxmin")


def test_single_process_without_flags(tmp_path: Path) -> None:
    """No torchrun, no GPU, default --world_size 8 not given: one process in a one-process gloo group."""
    namespace = _program_namespace()
    args = argparse.Namespace(world_size=8, dist_url="tcp://localhost:2023", rank=0, out=str(tmp_path), strategy="rand")
    launch(namespace["worker"], args, world_size_given=False)
    assert not is_dist_avail_and_initialized(), "the group is left afterwards"
    got = torch.load(tmp_path / "rank0.pt", weights_only=True)
    assert (got["rank"], got["world_size"]) == (0, 1)
    ref_loss, ref_grad = _reference("rand")  # both seed the global RNG with 1: same init and the same random picks
    torch.testing.assert_close(got["loss"], ref_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(got["grad"], ref_grad, atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_gld_distill_under_torchrun(tmp_path: Path) -> None:
    """The real gld_distill.py in two gloo processes: one snapshot, written by rank 0, in the original layout.

    64-px crops: the last batch holds one landmark per rank, and plain (CPU) BatchNorm needs > 1 value per channel.
    """
    weights = write_fake_weights(tmp_path / "weights", ["mocov3", "barlowtwins"])
    write_fake_gldv2(tmp_path / "gld")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    cmd += ["--master_port", str(free_port()), "gld_distill.py", "-ts", "mocov3", "barlowtwins", "-c", str(tmp_path)]
    cmd += ["--gld_root_path", str(tmp_path / "gld"), "--path_to_pretrained_weights", str(weights), "-b", "2"]
    cmd += ["--num_workers", "0", "--epochs", "1", "--snapshot_step", "1", "--imsize", "64", "--no_imagenet_init"]
    done = subprocess.run(cmd, cwd=PACKAGE, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoint_1.pt", weights_only=True)
    assert ckpt["lr_scheduler"]["last_epoch"] == 3  # 11 landmarks, 2 ranks: 5 each, batches of 2, 2, 1
    assert ckpt["loss_fn"]["pos_win_count"].sum().item() == 2 * (4 + 4 + 2)  # gathered N = 2 x local batch
    log = (tmp_path / "log.log").read_text()
    assert "| Distributed Group Sampler | 5 groups | iters 3 | 2 per batch" in log


def test_flag_detection_and_launch_errors(tmp_path: Path) -> None:
    assert given_on_command_line(["-b", "4", "--world_size", "2"], "--world_size")
    assert given_on_command_line(["--world_size=2"], "--world_size")
    assert given_on_command_line(["--world", "2"], "--world_size"), "argparse accepts unique prefixes"
    assert not given_on_command_line(["--wd", "0.1", "-c", "world_size"], "--world_size")
    args = argparse.Namespace(world_size=2, dist_url="tcp://127.0.0.1:1", rank=3, out=str(tmp_path), strategy="mean")
    with pytest.raises(KdReproError, match="outside --world_size 2"):
        launch(_program_namespace()["worker"], args)
    with pytest.raises(KdReproError, match="needs a process group"):
        wrap_ddp(torch.nn.Linear(2, 2), torch.device("cpu"))
