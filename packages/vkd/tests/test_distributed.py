"""Two CPU processes under torchrun (gloo): a full training run, and the DDP no-sync quirk vs `--ddp-sync-grads`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch

from kdrepro_shared.data import write_fake_image_folder
from kdrepro_shared.distributed import free_port

# Runs on each rank: the full CLI once with the fix, then one engine step per mode on fresh, identical students
# fed different data per rank; each rank saves its student weights per mode.
DRIVER = textwrap.dedent(
    """
    import sys, types
    import timm, torch, torch.distributed as dist
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy
    from timm.utils import NativeScaler
    from torch.nn.parallel import DistributedDataParallel
    from vkd import main_distributed
    from vkd.engine import train_one_epoch
    from vkd.models import DEIT_MODELS, attach_projector
    from vkd.utils.logging import CSVLogger
    from vkd.utils.lr_scheduler import build_scheduler
    from vkd.utils.optimizer import create_optimizer

    torch.set_num_threads(1)
    out, argv = sys.argv[1], sys.argv[2:]
    main_distributed.main(argv)
    rank = dist.get_rank()
    for sync in (False, True):
        torch.manual_seed(0)
        student = DEIT_MODELS["deit_ti_distilled"](num_classes=10, img_size=224)
        teacher = timm.create_model("regnety_002", num_classes=10).eval()
        attach_projector(student, teacher.num_features)
        ddp = DistributedDataParallel(student)
        opt = create_optimizer(student)
        sched = build_scheduler(opt, 1, epochs=1, warmup_epochs=0, decay_epochs=10, min_lr=5e-6, warmup_lr=5e-6)
        gen = torch.Generator().manual_seed(1 + rank)
        batch = [(torch.randn(2, 3, 224, 224, generator=gen), torch.tensor([1, 2]), torch.tensor([0, 1]))]
        args = types.SimpleNamespace(alpha=1.0, gamma=1.0, bce_loss=False, ddp_sync_grads=sync)
        columns = (("%d", "epoch"), ("%d", "itr"), ("%.5f", "xe"), ("%.5f", "rep"), ("%.5f", "kl"))
        log = CSVLogger(f"{out}/engine_r{rank}.csv", *columns)
        train_one_epoch(rank, log, print, ddp, teacher, SoftTargetCrossEntropy(), None, batch, opt,
                        torch.device("cpu"), 0, NativeScaler(), None, None, sched, None,
                        Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10), args=args)
        torch.save({k: v for k, v in student.state_dict().items()}, f"{out}/rank{rank}_sync{int(sync)}.pt")
    """
)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_ranks_quirk_and_fix(tmp_path: Path) -> None:
    write_fake_image_folder(tmp_path / "data", per_class=2, size=(40, 48))
    torch.manual_seed(0)
    torch.save({"model": timm.create_model("regnety_002").state_dict()}, tmp_path / "teacher.pth")
    (tmp_path / "driver.py").write_text(DRIVER)
    argv = [
        "--student-model", "deit_ti_distilled", "--teacher", "regnety_002",
        "--teacher-path", str(tmp_path / "teacher.pth"), "--data-path", str(tmp_path / "data"),
        "--batch-size", "2", "--num_workers", "0", "--no-pin-mem", "--epochs", "1",
        "--output_dir", str(tmp_path / "out"), "--ddp-sync-grads",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    done = subprocess.run(
        [*cmd, str(tmp_path / "driver.py"), str(tmp_path), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world of size 2" in done.stdout
    rows = (tmp_path / "out" / "r0_train.csv").read_text().splitlines()
    assert rows[0] == "epoch,itr,xe_loss,repr_distill_loss,kl_loss" and rows[1].startswith("0,0,")  # 1 iter per rank
    assert (tmp_path / "out" / "latest.pth.tar").is_file()

    def params(rank: int, sync: int) -> dict[str, torch.Tensor]:
        state = torch.load(tmp_path / f"rank{rank}_sync{sync}.pt", weights_only=True)
        return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}

    quirk0, quirk1 = params(0, 0), params(1, 0)
    # The original calls `student.module`, so DDP never all-reduces: each rank stepped on its own gradients.
    assert any(not torch.equal(quirk0[k], quirk1[k]) for k in quirk0)
    fixed0, fixed1 = params(0, 1), params(1, 1)
    for key in fixed0:
        torch.testing.assert_close(fixed0[key], fixed1[key], rtol=0, atol=0, msg=key)
