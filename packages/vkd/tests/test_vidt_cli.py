"""Detection CLI: every flag of the original `arguments.py`, and `main.py` end to end on a tiny fake COCO.

The end-to-end runs train one epoch (a few iterations at small scales: the train scale list is patched, the rest is
the real pipeline), evaluate the checkpoint with `--eval True`, and resume for a second epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vkd.vidt import fps_main
from vkd.vidt import main as vidt_main
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.datasets import coco
from vkd.vidt.datasets.fake_coco import write_fake_coco
from vkd.vidt.methods import PROJECTOR_NAMES, attach_projectors, build_distil_model, build_model

FIXTURE = Path(__file__).parent / "fixtures" / "vidt_cli" / "arguments.json"


def test_every_flag_of_the_original_with_its_default() -> None:
    ours = {action.dest: action for action in get_args_parser()._actions}
    for row in json.loads(FIXTURE.read_text()):
        action = ours[row["dest"]]
        assert action.option_strings == row["options"], row["dest"]
        assert action.default == row["default"], row["dest"]
        assert action.nargs == row["nargs"], row["dest"]
        if row["type"] == "str2bool-lambda":
            assert action.type("TRUE") is True and action.type("yes") is False
        elif row["type"] is not None:
            assert action.type.__name__ == row["type"], row["dest"]
    assert len(ours) == len(json.loads(FIXTURE.read_text()))


def test_readme_command_parses() -> None:
    argv = "--method vidt --backbone_name swin_nano --epochs 50 --lr 1e-4 --min-lr 1e-7 --batch_size 2 --num_workers 2"
    argv += " --aux_loss True --with_box_refine True --distil_model vidt_base --distil_model_path x.pth --local-rank 3"
    args = vidt_main.get_main_parser().parse_args(argv.split())
    assert (
        args.aux_loss is True
        and args.with_box_refine is True
        and args.min_lr == 1e-7
        and args.distil_model == "vidt_base"
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a fake COCO and a randomly initialised ViDT-nano teacher checkpoint."""
    work = tmp_path_factory.mktemp("vidt_cli")
    write_fake_coco(work / "coco")
    args = get_args_parser().parse_args([*common_argv(work)[:-4]])
    args.dim_feedforward = 1024
    torch.manual_seed(0)
    torch.save({"model": build_distil_model(args).state_dict()}, work / "teacher.pth")
    return work


def common_argv(work: Path) -> list[str]:
    return [
        "--method", "vidt", "--backbone_name", "swin_nano", "--pre_trained", "none", "--aux_loss", "True",
        "--with_box_refine", "True", "--device", "cpu", "--det_token_num", "10", "--distil_model", "vidt_nano",
        "--distil_model_path", str(work / "teacher.pth"), "--coco_path", str(work / "coco"), "--eval_size", "128",
        "--batch_size", "2", "--num_workers", "0", "--output_dir", "run",
    ]  # fmt: skip


@pytest.mark.timeout(900)
def test_train_eval_resume_end_to_end(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(coco, "TRAIN_SCALES", (128, 160))
    stats = vidt_main.main([*common_argv(workdir), "--epochs", "1"])
    run = workdir / "logs" / "run"
    assert len(stats["coco_eval_bbox"]) == 12
    checkpoint = torch.load(run / "checkpoint.pth", weights_only=False)
    assert checkpoint["epoch"] == 0 and checkpoint["args"].output_dir == "logs/run"
    assert sum(key.startswith(PROJECTOR_NAMES) for key in checkpoint["model"]) == 24
    assert set(checkpoint) == {"model", "optimizer", "lr_scheduler", "epoch", "args"}
    [line] = (run / "log.txt").read_text().splitlines()
    assert json.loads(line)["epoch"] == 0 and "train_loss_distil" in json.loads(line)
    assert (run / "eval" / "latest.pth").is_file() and list(run.glob("events.out.tfevents.*"))

    evaluated = vidt_main.main([*common_argv(workdir), "--resume", str(run / "checkpoint.pth"), "--eval", "True"])
    assert evaluated["coco_eval_bbox"] == pytest.approx(stats["coco_eval_bbox"])
    assert (run / "eval.pth").is_file()
    assert "Average Precision" in capsys.readouterr().out

    vidt_main.main([*common_argv(workdir), "--resume", str(run / "checkpoint.pth"), "--epochs", "2"])
    lines = (run / "log.txt").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    assert torch.load(run / "checkpoint.pth", weights_only=False)["epoch"] == 1


def test_user_errors_exit_with_one_line(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(workdir)
    argv = [a for a in common_argv(workdir) if a != str(workdir / "teacher.pth") and a != "--distil_model_path"]
    with pytest.raises(SystemExit) as exit_info:
        vidt_main.main(argv)
    assert exit_info.value.code != 0 and "--distil_model_path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        vidt_main.main([*common_argv(workdir), "--n_iter_to_acc", "3"])
    assert "--n_iter_to_acc" in capsys.readouterr().err


def test_fps_calculator_times_a_vkd_checkpoint(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`fps_calculator.py` loads a student checkpoint holding the projectors strictly and prints frames per second."""
    monkeypatch.chdir(workdir)
    flags = ["--backbone_name", "swin_nano", "--pre_trained", "none", "--aux_loss", "True", "--with_box_refine", "True"]
    args = get_args_parser().parse_args(flags)
    args.device, args.dim_feedforward = "cpu", 1024  # the benchmark's fixed settings
    torch.manual_seed(0)
    model, _, _ = build_model(args)
    attach_projectors(model)
    torch.save({"model": model.state_dict()}, workdir / "student.pth")
    argv = ["--coco_path", str(workdir / "coco"), "--resume", str(workdir / "student.pth")]
    fps_main.main([*argv, "--num_iters", "2", "--warm_iters", "1"])
    out = capsys.readouterr().out
    assert "num of total trainable prams:15M" in out
    fps = float(out.split("Inference Speed: ")[1].split(" FPS")[0])
    assert fps > 0
