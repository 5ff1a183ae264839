"""The sacred entry script: options, config resolution, the offline -> train -> evaluate chain, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kdrepro_shared.data import write_cifar
from letkd import main_classification
from letkd.distillation import architectures

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
SACRED_KEYS = [
    "config", "checkpoint", "num_workers", "cuda", "disp_step", "localpath", "evaluate", "testset", "best", "kmeans",
    "LDA", "incremental", "fname", "ksubset", "data_dir", "memmap", "memmap_dir", "seed",
]  # fmt: skip

TINY_BLOCKS = """
from letkd.configs.blocks import cifar100_data, cosine_head, sgd, vq_options

LUT = [(1, 0.05), (2, 0.005)]
OPT = {"depth": 8, "num_filters": [4, 4, 8, 16], "num_classes": 10, "extract_from": ["layer3"],
       "extract_after_relu": [False]}
TEACHER = {"def_file": "feature_extractors.resnet", "pretrained": "./saved_models/tiny/ckpt_epoch_240.pth",
           "opt": OPT, "optim_params": None, "force": True}
"""
TINY_TEACHER = (
    TINY_BLOCKS
    + """
config = {**cifar100_data(batch_size=32), "networks": {"student_net": TEACHER},
          "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}}, "algorithm_type": "classification",
          "lda_num_components": 4, "lda_num_subclass": 2}
"""
)
TINY_LETKD2 = (
    TINY_BLOCKS
    + """
LDA = "./experiments/LDA/CIFAR100/tiny/teacher"
config = {
    **cifar100_data(batch_size=32, epoch_size=64), "max_num_epochs": 2,
    "networks": {
        "teacher_net": TEACHER,
        "vector_quantizer_target": {
            "def_file": "miscellaneous.vector_quantization", "optim_params": None, "opt": vq_options(16, 16),
            "pretrained": "./experiments/VQ/CIFAR100/tiny/teacher/vector_quantizer_kmeansK16_net_epoch*"},
        "student_net": {"def_file": "feature_extractors.resnet", "pretrained": None, "opt": OPT,
                        "optim_params": sgd(LUT, with_classifier=True)},
        "BoW_predictor_0": {"def_file": "classifiers.classifier", "pretrained": None, "opt": cosine_head(16, 20),
                            "optim_params": sgd(LUT)},
        "BoW_predictor_1": {"def_file": "classifiers.classifier", "pretrained": None, "opt": cosine_head(16, 16),
                            "optim_params": sgd(LUT)},
        "valueLayer_0": {"def_file": "miscellaneous.valueLayer_subclass", "pretrained": None, "optim_params": sgd(LUT),
                         "opt": {"emb_size": 20, "inp_size": 16, "num_classes": 10, "lda_filename": LDA + "/lda_model",
                                 "centers_filename": LDA + "/centers_subclass_2.npy",
                                 "scores_filename": LDA + "/final_scores_2.npy"}},
        "valueLayer_1": {"def_file": "miscellaneous.valueLayer", "pretrained": None, "optim_params": sgd(LUT),
                         "opt": {"emb_size": 16, "inp_size": 16}},
    },
    "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
    "algorithm_type": "subclass_quest_value", "sub_loss_coef": 1.0, "quest_loss_coef": 1.0,
    "which_stage_t": 5, "which_stage_s": 5,
}
"""
)


def tiny_cifar(root: Path, n_train: int = 160, n_test: int = 20, num_classes: int = 10) -> Path:
    """A small CIFAR-100-layout copy whose classes differ in mean colour."""
    rs = np.random.RandomState(0)

    def images(n: int) -> tuple[np.ndarray, list[int]]:
        labels = np.arange(n) % num_classes
        pixels = rs.randint(0, 96, (n, 32, 32, 3)) + (labels * 15)[:, None, None, None]
        return pixels.astype(np.uint8), labels.tolist()

    write_cifar(root, *images(n_train), *images(n_test), num_classes=100)
    return root


def run(argv: list[str]) -> Any:
    """One in-process run of the entry script's command line."""
    return main_classification.main(["main_classification.py", *argv])


def expect_user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `argv`, expect exit status 2, and return the single `error:` line it printed."""
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    return errors[0]


def test_root_script_print_config_lists_the_original_keys() -> None:
    command = ["main_classification.py", "print_config", "with", "config=CIFAR100.resnetv1.RN56_RN20.letKD-1"]
    result = subprocess.run(
        [sys.executable, *command], cwd=PACKAGE_ROOT, capture_output=True, text=True, check=True, timeout=300
    )
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in result.stdout.splitlines() if " = " in line]
    assert sorted(line.split(" = ")[0] for line in lines) == sorted(SACRED_KEYS)
    assert "config = 'CIFAR100.resnetv1.RN56_RN20.letKD-1'" in lines
    for default in ("num_workers = 2", "disp_step = 200", "memmap_dir = './tmp'", "best = True", "cuda = True"):
        assert default in lines


def test_unknown_config_lists_near_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = expect_user_error(["with", "config=CIFAR100.resnetv1.RN56_RN2.letKD-1"], capsys)
    assert "did you mean CIFAR100.resnetv1.RN56_RN20.letKD-1" in line


def test_wrong_data_dir_names_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = expect_user_error(["with", "config=CIFAR100.resnetv1.RN56", "data_dir=nowhere", "evaluate=True"], capsys)
    assert "nowhere/cifar-100-python/{train,test,meta}" in line


def test_missing_teacher_names_the_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    tiny_cifar(tmp_path / "data", n_train=10, n_test=10)
    line = expect_user_error(["with", "config=CIFAR100.resnetv1.RN56", "data_dir=data", "kmeans=4096"], capsys)
    assert "python download_cifar100_teacher.py" in line


def test_missing_targets_name_the_offline_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    tiny_cifar(tmp_path / "data", n_train=10, n_test=10)
    line = expect_user_error(["with", "config=CIFAR100.resnetv1.RN56_RN20.letKD-2", "data_dir=data"], capsys)
    assert "`python main_classification.py with config=CIFAR100.resnetv1.RN56 LDA=5`" in line
    teacher = architectures.factory("feature_extractors.resnet", load_config_opt("CIFAR100.resnetv1.RN56"))
    path = tmp_path / "saved_models" / "resnet56_vanilla" / "ckpt_epoch_240.pth"
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 240, "model": teacher.state_dict()}, path)
    line = expect_user_error(["with", "config=CIFAR100.resnetv1.RN56_RN20.letKD-1", "data_dir=data"], capsys)
    assert "`python main_classification.py with config=CIFAR100.resnetv1.RN56 kmeans=4096`" in line


def test_unsupported_modes_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    line = expect_user_error(["with", "config=CIFAR100.resnetv1.RN56", "incremental=True"], capsys)
    assert "incremental=True" in line


def load_config_opt(name: str) -> dict[str, Any]:
    """The network options of a teacher config."""
    from letkd.configs import load_config

    return load_config(name)["networks"]["student_net"]["opt"]


def write_tiny_project(root: Path) -> None:
    """User configs under ./CIFAR100/tiny, a random tiny teacher file and the data, in the working dir `root`."""
    configs = root / "CIFAR100" / "tiny"
    (configs / "pair").mkdir(parents=True)
    (configs / "teacher.py").write_text(TINY_TEACHER, encoding="utf-8")
    (configs / "pair" / "letKD-2.py").write_text(TINY_LETKD2, encoding="utf-8")
    torch.manual_seed(0)
    opt = {"depth": 8, "num_filters": [4, 4, 8, 16], "num_classes": 10, "extract_from": ["layer3"]}
    teacher = architectures.factory("feature_extractors.resnet", {**opt, "extract_after_relu": [False]})
    (root / "saved_models" / "tiny").mkdir(parents=True)
    torch.save({"epoch": 240, "model": teacher.state_dict()}, root / "saved_models" / "tiny" / "ckpt_epoch_240.pth")
    tiny_cifar(root / "data")


def test_offline_train_evaluate_resume_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_tiny_project(tmp_path)
    common = ["data_dir=data", "num_workers=0", "cuda=False", "seed=1"]
    kmeans = run(["with", "config=CIFAR100.tiny.teacher", "kmeans=16", *common]).result
    assert kmeans["file"].endswith("experiments/VQ/CIFAR100/tiny/teacher/vector_quantizer_kmeansK16_net_epoch*")
    lda = run(["with", "config=CIFAR100.tiny.teacher", "LDA=5", *common]).result
    lda_dir = tmp_path / "experiments" / "LDA" / "CIFAR100" / "tiny" / "teacher"
    assert lda["files"]["scores"] == str(lda_dir / "final_scores_2_4.npy")
    scores = np.load(lda_dir / "final_scores_2_4.npy")
    assert scores.shape == (20, 20)
    np.testing.assert_allclose(scores.sum(1), 1.0)
    # The letKD-2 config names *_2.npy; the LDA run wrote *_2_4.npy, which the entry script resolves.
    trained = run(["with", "config=CIFAR100.tiny.pair.letKD-2", *common]).result
    exp_dir = tmp_path / "experiments" / "CIFAR100" / "tiny" / "pair" / "letKD-2"
    assert trained["mode"] == "train" and trained["last_epoch"] == 2
    assert {"loss_sub", "loss_quest", "AccuracyTop1"} <= set(trained["last"])
    assert (exp_dir / "feature_extractor_net_epoch2").is_file()
    assert not (exp_dir / "feature_extractor_net_epoch1").exists()
    assert len(list(exp_dir.glob("valueLayer_0_net_epoch*.best"))) == 1
    assert list((exp_dir / "logs").glob("LOG_INFO_*.txt"))
    assert list((exp_dir / "logs" / "TENSORBOARD").iterdir())
    evaluated = run(["with", "config=CIFAR100.tiny.pair.letKD-2", "evaluate=True", *common]).result
    assert evaluated["epoch"] == trained["best_epoch"]
    assert evaluated["results"]["AccuracyTop1"] == pytest.approx(trained["best"]["AccuracyTop1"])
    last = run(["with", "config=CIFAR100.tiny.pair.letKD-2", "evaluate=True", "best=False", *common]).result
    assert last["epoch"] == 2
    assert last["results"]["AccuracyTop1"] == pytest.approx(trained["last"]["AccuracyTop1"])
    resumed = run(["with", "config=CIFAR100.tiny.pair.letKD-2", "checkpoint=-1", *common]).result
    assert resumed["mode"] == "train" and resumed["last"] is None  # resumed at max_num_epochs: nothing left to train


def test_file_storage_observer_records_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_tiny_project(tmp_path)
    run(["-F", "runs", "with", "config=CIFAR100.tiny.teacher", "evaluate=True", "data_dir=data", "num_workers=0"])
    run_json = next((tmp_path / "runs").glob("*/run.json")).read_text(encoding="utf-8")
    assert '"mode": "evaluate"' in run_json and '"status": "COMPLETED"' in run_json
