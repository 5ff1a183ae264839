"""The demo runs the whole chain through the entry script and prints the teacher / letKD-1 / letKD-2 table."""

from __future__ import annotations

from pathlib import Path

import pytest

from letkd import demo


@pytest.mark.slow
def test_demo_runs_the_chain_and_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main(["--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    table = out[out.index("| model |") :].splitlines()
    assert [row.split("|")[1].strip() for row in table[2:5]] == [
        "teacher ResNet-14 (last epoch exported)",
        "letKD-1 ResNet-8",
        "letKD-2 ResNet-8",
    ]
    for row in table[2:5]:
        assert 0.0 <= float(row.split("|")[3]) <= 100.0
    lda = tmp_path / "experiments" / "LDA" / "CIFAR100" / "demo" / "RN14"
    assert (lda / "final_scores_8_9.npy").is_file() and (lda / "centers_subclass_8_9.npy").is_file()
    assert (tmp_path / "saved_models" / "demo_resnet14_digits" / "ckpt_epoch_8.pth").is_file()


def test_format_table_shows_best_and_last() -> None:
    table = demo.format_table([("letKD-1 ResNet-8", "CIFAR100.demo.RN14_RN8.letKD-1", 91.5, 90.25, 12.0)])
    assert table.splitlines()[2] == "| letKD-1 ResNet-8 | `CIFAR100.demo.RN14_RN8.letKD-1` | 91.50 | 90.25 | 12 |"
