"""`main_distributed.py`'s CLI: every flag of the original with its type and default, and the one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdrepro_shared.data import write_fake_image_folder
from vkd.main_distributed import get_args_parser, main

PACKAGE = Path(__file__).resolve().parents[1]

EXPECTED_DEFAULTS = {
    "batch_size": 256, "epochs": 300, "bce_loss": False, "unscale_lr": False, "eval_student": False,
    "student_ckpt": "none", "student_model": "deit_base_patch16_224", "input_size": 224, "drop": 0.0,
    "drop_path": 0.1, "student_ema": False, "model_ema": True, "student_ema_decay": 0.99996,
    "student_ema_force_cpu": False, "opt": "adamw", "opt_eps": 1e-8, "opt_betas": None, "clip_grad": None,
    "momentum": 0.9, "weight_decay": 0.05, "alpha": 1.0, "gamma": 1.0, "sched": "cosine", "lr": 5e-4,
    "lr_noise": None, "lr_noise_pct": 0.67, "lr_noise_std": 1.0, "warmup_lr": 1e-6, "min_lr": 1e-5,
    "decay_epochs": 30, "warmup_epochs": 5, "cooldown_epochs": 10, "patience_epochs": 10, "decay_rate": 0.1,
    "color_jitter": 0.3, "aa": "rand-m9-mstd0.5-inc1", "smoothing": 0.1, "train_interpolation": "bicubic",
    "repeated_aug": True, "train_mode": True, "src": False, "disable_gray_solar_and_blur": False, "reprob": 0.25,
    "remode": "pixel", "recount": 1, "resplit": False, "mixup": 0.8, "cutmix": 1.0, "cutmix_minmax": None,
    "mixup_prob": 1.0, "mixup_switch_prob": 0.5, "mixup_mode": "batch", "teacher": "regnety_160",
    "teacher_path": None, "data_path": "/home/roymiles/imagenet2012_downloaded", "data_set": "IMNET",
    "subset": "FULL", "output_dir": "", "device": "cuda", "seed": 0, "resume": "", "start_epoch": 0, "eval": False,
    "eval_crop_ratio": 0.875, "dist_eval": False, "num_workers": 12, "pin_mem": True, "local_rank": 0,
    "world_size": 1, "dist_url": "env://",
    # opt-in fixes of this package (not in the original), off by default
    "ddp_sync_grads": False, "fix_projector_decay": False,
}  # fmt: skip

FLAG_TYPES = {
    "--batch-size": int, "--epochs": int, "--student-ckpt": str, "--student-model": str, "--input-size": int,
    "--drop": float, "--drop-path": float, "--student-ema-decay": float, "--opt": str, "--opt-eps": float,
    "--opt-betas": float, "--clip-grad": float, "--momentum": float, "--weight-decay": float, "--alpha": float,
    "--gamma": float, "--sched": str, "--lr": float, "--lr-noise": float, "--lr-noise-pct": float,
    "--lr-noise-std": float, "--warmup-lr": float, "--min-lr": float, "--decay-epochs": float, "--warmup-epochs": int,
    "--cooldown-epochs": int, "--patience-epochs": int, "--decay-rate": float, "--color-jitter": float, "--aa": str,
    "--smoothing": float, "--train-interpolation": str, "--reprob": float, "--remode": str, "--recount": int,
    "--mixup": float, "--cutmix": float, "--cutmix-minmax": float, "--mixup-prob": float,
    "--mixup-switch-prob": float, "--mixup-mode": str, "--teacher": str, "--teacher-path": str, "--data-path": str,
    "--data-set": str, "--subset": str, "--seed": int, "--start_epoch": int, "--eval-crop-ratio": float,
    "--num_workers": int, "--local-rank": int, "--world_size": int,
}  # fmt: skip
NARGS_PLUS = {"--opt-betas", "--lr-noise", "--cutmix-minmax"}


def test_every_default_matches_the_original() -> None:
    assert vars(get_args_parser().parse_args([])) == EXPECTED_DEFAULTS


def test_flag_types_and_nargs() -> None:
    actions = {opt: a for a in get_args_parser()._actions for opt in a.option_strings}
    for flag, kind in FLAG_TYPES.items():
        assert actions[flag].type is kind, flag
        assert (actions[flag].nargs == "+") == (flag in NARGS_PLUS), flag
    assert actions["--dr"] is actions["--decay-rate"]
    assert actions["--data-set"].choices == ["CIFAR", "IMNET"]
    assert actions["--subset"].choices == ["FULL", "1PERCENT", "10PERCENT", "MINIIMAGENET"]


def test_switch_pairs_and_values() -> None:
    parse = get_args_parser().parse_args
    args = parse(["--no-pin-mem", "--no-repeated-aug", "--no-train-mode", "--student-ema", "--src", "--bce-loss"])
    assert (args.pin_mem, args.repeated_aug, args.train_mode, args.student_ema, args.src, args.bce_loss) == (
        False, False, False, True, True, True,
    )  # fmt: skip
    assert parse(["--student-ema", "--no-student-ema"]).student_ema is False
    args = parse(["--cutmix-minmax", "0.2", "0.8", "--opt-betas", "0.9", "0.99", "--local-rank", "1"])
    assert (args.cutmix_minmax, args.opt_betas, args.local_rank) == ([0.2, 0.8], [0.9, 0.99], 1)
    assert parse(["--disable-gray-solar-and-blur"]).disable_gray_solar_and_blur is True
    with pytest.raises(SystemExit):
        parse(["--data-set", "CIFAR10"])


@pytest.fixture
def tiny_imagenet(tmp_path: Path) -> Path:
    return write_fake_image_folder(tmp_path / "imagenet", per_class=1, size=(8, 8))


def run_main_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()  # warnings (e.g. pin_memory on CPU) may come first
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0]
    return errors[0]


def test_wrong_data_path_layout_is_one_line(
    tmp_path: Path, tiny_imagenet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = run_main_error(["--data-path", str(tmp_path / "missing"), "--student-model", "deit_ti_distilled"], capsys)
    assert "missing/val" in line and "<class>" in line
    (tiny_imagenet / "val").rename(tiny_imagenet / "validation")
    line = run_main_error(["--data-path", str(tiny_imagenet), "--student-model", "deit_ti_distilled"], capsys)
    assert "imagenet/val not found" in line and "validation" in line


def test_unknown_student_model_is_one_line(tiny_imagenet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = run_main_error(["--data-path", str(tiny_imagenet), "--num_workers", "0"], capsys)
    assert "unknown --student-model 'deit_base_patch16_224'" in line and "deit_ti_distilled" in line


def test_root_shim_help_runs_without_a_launcher() -> None:
    done = subprocess.run(
        [sys.executable, "main_distributed.py", "--help"], cwd=PACKAGE, capture_output=True, text=True, check=True
    )
    assert "--ddp-sync-grads" in done.stdout and "--teacher-path" in done.stdout
