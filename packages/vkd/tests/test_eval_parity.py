"""`--eval-student` (top-1/top-5 and eval loss) vs the original `evaluate.main` of roymiles/VkD @ 6f8a507.

Filled DeiT-Ti student, 2 classes × 3 seeded 250×300 PNGs, val batches of 4 and 2; see `fixtures/eval/README.md`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from timm.utils import AverageMeter

from kdrepro_shared.data import write_fake_image_folder
from vkd import engine, evaluate
from vkd.main_distributed import main
from vkd.models import MODELS
from vkd.testing import fill_value

EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "eval" / "deit_ti_eval.json").read_text())

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_eval_student_matches_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    write_fake_image_folder(data, per_class=1, size=(40, 48), splits=("train",), ext=".png")
    write_fake_image_folder(data, per_class=3, size=(250, 300), splits=("val",), ext=".png", seed=3)
    student = MODELS["deit_ti_distilled"](num_classes=1000, img_size=224)
    state = {
        k: v if k.endswith("num_batches_tracked") else fill_value(k, tuple(v.shape))
        for k, v in student.state_dict().items()
    }
    torch.save({"student": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ckpt.pth")

    meters: list[AverageMeter] = []

    class RecordingMeter(AverageMeter):
        def __init__(self) -> None:
            super().__init__()
            meters.append(self)

    returned: list[tuple[float, float]] = []
    real_main = evaluate.main
    monkeypatch.setattr(engine, "AverageMeter", RecordingMeter)
    monkeypatch.setattr(evaluate, "main", lambda args: returned.append(real_main(args)))
    main([
        "--eval-student", "--student-ckpt", str(tmp_path / "ckpt.pth"), "--student-model", "deit_ti_distilled",
        "--data-path", str(data), "--batch-size", "3", "--num_workers", "0", "--no-pin-mem",
    ])  # fmt: skip

    ((acc1, acc5),) = returned
    _, loss_meter, acc1_meter, _ = meters
    assert (acc1, acc5) == (EXPECTED["acc1"], EXPECTED["acc5"])
    assert acc1_meter.count == EXPECTED["count"]
    assert loss_meter.avg == pytest.approx(EXPECTED["loss"], rel=1e-5)
