"""Short real runs of `main_distributed.main` on a tiny ImageFolder at 224 px: train, checkpoint, resume, evaluate.

DeiT-Ti student (the smallest the factory allows) with a random `regnety_002` teacher given by `--teacher-path`
(no network), batch 2, one process in a one-rank gloo group, one torch thread.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import timm
import torch

from kdrepro_shared.data import write_fake_image_folder
from vkd.main_distributed import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Train 1 epoch (1 iteration) with the student EMA, then resume from latest.pth.tar for a second epoch."""
    root = tmp_path_factory.mktemp("vkd_train")
    write_fake_image_folder(root / "data", per_class=1, size=(40, 48), splits=("train",))
    write_fake_image_folder(root / "data", per_class=1, size=(48, 40), splits=("val",), seed=1)
    torch.manual_seed(0)
    torch.save({"model": timm.create_model("regnety_002").state_dict()}, root / "teacher.pth")
    common = [
        "--student-model", "deit_ti_distilled", "--teacher", "regnety_002", "--teacher-path", str(root / "teacher.pth"),
        "--data-path", str(root / "data"), "--batch-size", "2", "--num_workers", "0", "--no-pin-mem", "--student-ema",
    ]  # fmt: skip
    out = root / "out"
    torch.set_num_threads(1)
    main([*common, "--epochs", "1", "--output_dir", str(out)])
    first = torch.load(out / "latest.pth.tar", weights_only=True)
    main([*common, "--epochs", "2", "--output_dir", str(out), "--resume", str(out / "latest.pth.tar")])
    return {"root": root, "out": out, "first": first, "common": common}


def test_checkpoint_names_and_contents(run: dict) -> None:
    out, first = run["out"], run["first"]
    assert sorted(p.name for p in out.iterdir()) == [
        "latest.pth.tar", "params.yaml", "r0_train.csv", "r0_val.csv", "scripts",
    ]  # fmt: skip
    assert sorted(p.name for p in (out / "scripts").iterdir()) == [
        "datasets.py", "engine.py", "models_deit.py", "train.py",
    ]  # fmt: skip
    assert set(first) == {
        "student",
        "student_ema",
        "optimizer",
        "scaler",
        "epoch",
        "loss",
        "batch_size",
        "world_size",
        "lr",
    }
    assert (first["epoch"], first["batch_size"], first["world_size"]) == (0, 2, 1)
    ema = first["student_ema"]  # the EMA copy was made before the projector was attached: no projector keys
    assert len(ema) == 172 and set(ema) == {k.removeprefix("module.") for k in first["student"] if "projector" not in k}
    ema_head, head = ema["head.weight"], first["student"]["module.head.weight"]
    assert not torch.equal(ema_head, head) and (ema_head - head).abs().max() < 1e-3  # momentum 0.996 step
    assert first["lr"] == 5e-4  # step_update(epoch·ipe + it) after the only iteration sets lr(0)
    student = first["student"]
    assert len(student) == 174 and all(k.startswith("module.") for k in student)
    assert student["module.projector.parametrizations.weight.original"].shape == (368, 192)
    assert student["module.projector.parametrizations.weight.0.base"].shape == (368, 368)
    groups = first["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0] and [len(g["params"]) for g in groups] == [55, 109]
    assert all(g["lr"] == 5e-4 and g["initial_lr"] == 5e-4 for g in groups)


def test_logs_and_resume_continues(run: dict) -> None:
    out = run["out"]
    rows = list(csv.reader((out / "r0_train.csv").open()))
    # the header repeats on resume; the resumed run re-runs the saved epoch 0 (start_epoch = ckpt epoch), then epoch 1
    assert rows[0] == rows[2] == ["epoch", "itr", "xe_loss", "repr_distill_loss", "kl_loss"]
    assert [r[:2] for r in rows if r[0] != "epoch"] == [["0", "0"], ["0", "0"], ["1", "0"]]
    assert all(len(v.split(".")[1]) == 5 for r in rows[1:] if r[0] != "epoch" for v in r[2:])
    val = list(csv.reader((out / "r0_val.csv").open()))
    bar = "-----------------"  # then the final EMA row
    assert [r[0] for r in val] == ["epoch", "0", bar, "0", "epoch", "0", "1", bar, "1"]
    final = torch.load(out / "latest.pth.tar", weights_only=True)
    assert final["epoch"] == 1
    assert final["lr"] == pytest.approx(5e-6 + 0.5 * (5e-4 - 5e-6))  # lr(1) of a 2-iteration cosine
    state = final["optimizer"]["state"]
    assert {int(s["step"]) for s in state.values()} == {3}  # 1 step, then 2 more after resuming
    original = final["student"]["module.projector.parametrizations.weight.original"]
    assert original.diagonal().abs().max() < 1  # the decayed diagonal: the projector has collapsed (quirk)
    assert "resume" in (out / "params.yaml").read_text()


def test_eval_student_reports_accuracy(run: dict, caplog: pytest.LogCaptureFixture) -> None:
    from vkd import evaluate

    captured: list[tuple[float, float]] = []
    real_main = evaluate.main
    evaluate.main = lambda args: captured.append(real_main(args))  # type: ignore[assignment]
    try:
        main([*run["common"], "--eval-student", "--student-ckpt", str(run["out"] / "latest.pth.tar")])
    finally:
        evaluate.main = real_main
    ((acc1, acc5),) = captured
    assert acc1 in (0.0, 50.0, 100.0) and acc5 == 100.0  # 2 val images, 1000-way head, labels 0/1
