"""The real `gld_distill` on a tiny fake GLDv2 with fake MoCo v3 / Barlow Twins teacher files (CPU, one process).

Two epochs of 3 iterations (11 landmarks, b = 4, 32-px crops): config.yaml, log.log, TensorBoard events, snapshots in
the original layout, then `--resume` from the first snapshot continuing optimiser, schedule and win counter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torchvision.models import resnet18 as tv_resnet18

from whiten_mtd import gld_distill_main
from whiten_mtd.datasets.fake_gld import write_fake_gldv2
from whiten_mtd.models import resnet as resnet_module
from whiten_mtd.models.fake_weights import write_fake_weights

PACKAGE = Path(__file__).resolve().parents[1]
TEACHERS = ["mocov3", "barlowtwins"]
ITERS_PER_EPOCH = 3  # 11 landmarks with >= 2 images, batches of 4, 4, 3
POSITIVES_PER_EPOCH = 2 * (4 + 4 + 3)  # row and column term each count every positive


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    weights = write_fake_weights(tmp_path_factory.mktemp("weights"), TEACHERS)
    gld = tmp_path_factory.mktemp("gldv2")
    write_fake_gldv2(gld)
    return weights, gld


def _argv(data: tuple[Path, Path], ckpt_dir: Path, *extra: str) -> list[str]:
    weights, gld = data
    return [
        *["-ts", *TEACHERS, "-c", str(ckpt_dir), "--gld_root_path", str(gld)],
        *["--path_to_pretrained_weights", str(weights), "-b", "4", "--num_workers", "0", "--epochs", "2"],
        *["--snapshot_step", "1", "--imsize", "32", *extra],
    ]


@pytest.fixture(scope="module")
def first_run(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Train with the default ImageNet student init, served offline by a seeded torchvision ResNet-18 state."""
    calls: list[str] = []

    def fake_imagenet(arch: str) -> dict[str, torch.Tensor]:
        calls.append(arch)
        torch.manual_seed(0)
        return tv_resnet18().state_dict()

    ckpt_dir = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resnet_module, "imagenet_state_dict", fake_imagenet)
        gld_distill_main.main(_argv(data, ckpt_dir))
    return ckpt_dir, calls


def _check_checkpoint(path: Path, epoch: int) -> dict:
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"epoch", "state_dict", "optimizer", "lr_scheduler", "loss_fn"}
    assert ckpt["epoch"] == epoch
    assert len(ckpt["state_dict"]) == 122
    assert all(key.startswith("module.base_encoder.") for key in ckpt["state_dict"])
    assert ckpt["state_dict"]["module.base_encoder.fc.weight"].shape == (512, 512)
    assert ckpt["lr_scheduler"]["last_epoch"] == epoch * ITERS_PER_EPOCH
    assert ckpt["lr_scheduler"]["T_max"] == 2 * ITERS_PER_EPOCH
    assert ckpt["lr_scheduler"]["eta_min"] == 1e-6
    group = ckpt["optimizer"]["param_groups"][0]
    assert (group["initial_lr"], group["weight_decay"], group["betas"]) == (1e-3, 1e-6, (0.9, 0.999))
    steps = {int(state["step"]) for state in ckpt["optimizer"]["state"].values()}
    assert steps == {epoch * ITERS_PER_EPOCH}
    assert ckpt["loss_fn"]["pos_win_count"].sum().item() == epoch * POSITIVES_PER_EPOCH
    return ckpt


def test_training_writes_config_logs_events_and_snapshots(first_run: tuple[Path, list[str]]) -> None:
    ckpt_dir, calls = first_run
    assert calls == ["resnet18"], "the student trunk is ImageNet-initialised by default"
    config = yaml.safe_load((ckpt_dir / "config.yaml").read_text())
    assert config["teachers"] == TEACHERS
    assert (config["lr"], config["weight_decay"], config["strategy"], config["world_size"]) == (1e-3, 1e-6, "maxmin", 8)
    assert (config["tt"], config["st"], config["p"], config["embed_dim"]) == (0.05, 0.05, 3, 512)
    log = (ckpt_dir / "log.log").read_text()
    assert "Number of parameters: 58455232" in log
    assert "Number of trainable parameters: 11439168" in log
    assert "| Distributed Group Sampler | 11 groups | iters 3 | 4 per batch" in log
    assert "learning rate: 0.00100000" in log
    assert "positive count: mocov3:" in log
    assert log.count("Averaged stats: distill loss:") == 2
    assert list((ckpt_dir / "tensorboard").glob("events.out.tfevents.*"))
    first = _check_checkpoint(ckpt_dir / "checkpoint_1.pt", 1)
    second = _check_checkpoint(ckpt_dir / "checkpoint_2.pt", 2)
    moved = first["state_dict"]["module.base_encoder.fc.weight"] - second["state_dict"]["module.base_encoder.fc.weight"]
    assert moved.abs().max() > 0, "the student trains"


def test_resume_continues_from_the_snapshot(
    data: tuple[Path, Path], first_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    ckpt_dir, _ = first_run
    gld_distill_main.main(_argv(data, tmp_path, "--resume", str(ckpt_dir / "checkpoint_1.pt"), "--no_imagenet_init"))
    assert not (tmp_path / "checkpoint_1.pt").exists(), "epoch 1 is not trained again"
    _check_checkpoint(tmp_path / "checkpoint_2.pt", 2)
    log = (tmp_path / "log.log").read_text()
    assert "Loaded checkpoint." in log
    assert log.count("Averaged stats") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-ts", "resnet152_gem"], "unknown teacher(s) resnet152_gem"),
        (["-s", "maxfix"], "--strategy 'maxfix' is not one of"),
        (["--resume", "missing.pt"], "no checkpoint found at 'missing.pt'"),
        (["--gld_root_path", "nowhere"], "meta/train_clean.csv not found"),
    ],
)
def test_user_errors_exit_with_one_line(
    extra: list[str], message: str, data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gld_distill_main.main(_argv(data, tmp_path / "ckpt", *extra))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_entry_script_lists_every_original_flag() -> None:
    done = subprocess.run(
        [sys.executable, "gld_distill.py", "-h"], cwd=PACKAGE, capture_output=True, text=True, timeout=300, check=True
    )
    flags = "-a --arch -ts --teachers -c --ckpt_dir --gld_root_path -b --batch_size --num_workers -r --resume"
    flags += " --path_to_pretrained_weights --world_size --dist_url --rank --start_epoch --epochs --lr --wd"
    flags += " --weight-decay --snapshot_step --embed_dim -tt -st -p --imsize -s --strategy"
    for flag in flags.split():
        assert f"{flag} " in done.stdout or f"{flag}," in done.stdout or f"{flag}\n" in done.stdout, flag
    defaults = gld_distill_main.get_args_parser().parse_args(["-ts", "x", "-c", "y"])
    assert vars(defaults) == {
        "arch": "resnet18",
        "teachers": ["x"],
        "ckpt_dir": "y",
        "gld_root_path": "/path/to/gldv2",
        "batch_size": 64,
        "num_workers": 8,
        "resume": None,
        "path_to_pretrained_weights": "/path/to/pretrained_weights",
        "world_size": 8,
        "dist_url": "tcp://localhost:2023",
        "rank": 0,
        "start_epoch": 0,
        "epochs": 200,
        "lr": 1e-3,
        "weight_decay": 1e-6,
        "snapshot_step": 10,
        "embed_dim": 512,
        "tt": 0.05,
        "st": 0.05,
        "p": 3,
        "imsize": 512,
        "strategy": "maxmin",
        "no_imagenet_init": False,
        "seed": None,
    }


@pytest.mark.gpu
def test_training_on_one_gpu(data: tuple[Path, Path], tmp_path: Path) -> None:
    """The CUDA path: nccl one-process group, SyncBatchNorm, DDP with device_ids; same snapshot layout."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    gld_distill_main.main(_argv(data, tmp_path, "--no_imagenet_init", "--epochs", "1"))
    ckpt = torch.load(tmp_path / "checkpoint_1.pt", weights_only=True, map_location="cpu")
    assert ckpt["epoch"] == 1
    assert all(key.startswith("module.base_encoder.") for key in ckpt["state_dict"])
