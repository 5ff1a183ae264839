"""The demo: flags, the configs it writes, the drawn data it feeds the real readers, and (slow) a full run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import yaml

from rkd_retina import demo
from rkd_retina.dataset.fire import list_fire_pairs, load_control_points
from rkd_retina.dataset.procedural_fundus import FOV_RADIUS, draw_fundus
from rkd_retina.dataset.retina_dataset import RetinaDataset
from rkd_retina.test_on_FIRE import FireRecord, check_fire_counts
from rkd_retina.train_entry import read_train_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
# (section, key) the demo changes on purpose; every other paper key keeps its value.
DEMO_OVERRIDES = {
    ("MODEL", "num_epoch"),
    ("MODEL", "device"),
    ("MODEL", "model_save_path"),
    ("DATASET", "model_image_width"),
    ("DATASET", "model_image_height"),
    ("PKE", "pke_show"),
    ("MODEL", "num_workers"),
    ("MODEL", "detect_anomaly"),
}


def items(config: dict) -> dict[tuple[str, str], object]:
    """{(section, key): value} of a sectioned config."""
    return {(section, key): value for section, values in config.items() for key, value in values.items()}


def test_defaults_and_size_check() -> None:
    args = demo.parse_args([])
    assert (args.image_size, args.raw_size, args.epochs) == (96, 192, 3)
    assert not args.compare_untrained
    with pytest.raises(SystemExit):
        demo.parse_args(["--image-size", "100"])  # not a multiple of 8


def test_train_config_is_the_paper_config_with_demo_overrides() -> None:
    paper = items(yaml.safe_load((CONFIG_DIR / "train.yaml").read_text()))
    ours = items(demo.demo_train_config(demo.parse_args([]), "cpu"))
    assert set(ours) == set(paper)
    assert {key for key in paper if paper[key] != ours[key]} == DEMO_OVERRIDES


def test_committed_demo_config_matches_the_demo() -> None:
    committed = yaml.safe_load((CONFIG_DIR / "train_demo.yaml").read_text())
    assert committed == demo.demo_train_config(demo.parse_args([]), "cpu"), (
        "config/train_demo.yaml is stale: it must equal demo.demo_train_config(parse_args([]), 'cpu')"
    )


def test_written_configs_read_back(tmp_path: Path) -> None:
    args = demo.parse_args(["--image-size", "64", "--epochs", "2"])
    train = demo.write_yaml(tmp_path / "train_demo.yaml", demo.demo_train_config(args, "cpu"))
    flat = read_train_config(train)
    assert (flat["model_image_width"], flat["num_epoch"], flat["num_workers"]) == (64, 2, 0)
    test = demo.write_yaml(tmp_path / "test_demo.yaml", demo.demo_test_config(args, "cpu", "./ck.pth_1"))
    predict = yaml.safe_load(test.read_text())["PREDICT"]
    paper = yaml.safe_load((CONFIG_DIR / "test.yaml").read_text())["PREDICT"]
    assert set(predict) == set(paper)
    assert (predict["model_name"], predict["model_save_path"], predict["model_image_height"]) == (
        "SuperRetina",
        "./ck.pth_1",
        64,
    )


def test_draw_fundus_is_seeded_and_labels_forks_inside_the_fov() -> None:
    first, again, other = draw_fundus(96, 3), draw_fundus(96, 3), draw_fundus(96, 4)
    assert first.image.shape == (96, 96, 3)
    assert first.image.dtype == np.uint8
    assert np.array_equal(first.image, again.image)
    assert np.array_equal(first.keypoints, again.keypoints)
    assert not np.array_equal(first.image, other.image)
    assert len(first.keypoints) >= 5
    assert (np.hypot(*(first.keypoints - 48).T) < FOV_RADIUS * 96).all()
    assert first.image[0, 0].max() < 10  # outside the field of view is dark
    assert first.image[:, :, 1].std() > 5  # vessels and shading give the green channel contrast


def test_training_data_reads_through_the_dataset(tmp_path: Path) -> None:
    args = demo.parse_args(["--train-images", "2", "--val-images", "1", "--auxiliary-images", "1", "--raw-size", "128"])
    our, aux = demo.write_demo_training_data(tmp_path, args)
    train = RetinaDataset(our, "train.txt", is_train=True, data_shape=(64, 64), auxiliary=aux)
    val = RetinaDataset(our, "val.txt", is_train=False, data_shape=(64, 64))
    assert (len(train), len(val)) == (3, 1)
    image, labelled, label_map, name = val[0]
    assert labelled
    assert image.shape == (1, 64, 64)
    assert label_map.sum() > 0
    assert name.endswith(".txt")
    assert not train[2][1]  # the auxiliary image comes last and has no labels


def test_fire_set_has_the_fire_counts_and_true_control_points(tmp_path: Path) -> None:
    args = demo.parse_args(["--raw-size", "64", "--image-size", "64"])
    fire = demo.write_demo_fire(tmp_path, args)
    pairs = list_fire_pairs(fire)
    check_fire_counts(pairs)
    points = load_control_points(pairs[0].gt_path)
    assert points.shape == (10, 4)


def test_table_row_and_figure_saving(tmp_path: Path) -> None:
    record = FireRecord(auc_record={"S": [0.5] * 71, "P": [1e6] * 48, "A": [3.0] * 14}, failed=48, image_num=133)
    row = demo.table_row("trained", record, 12.3)
    assert row == "| trained | 36.09 | 0.00 | 63.91 | 1.000 | 0.000 | 0.880 | 0.627 | 12 |"
    with demo.show_saves_to(tmp_path / "figure.png"):
        plt.figure()
        plt.plot([0, 1])
        plt.show()
    plt.close("all")
    assert (tmp_path / "figure.png").stat().st_size > 0


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--output-dir", str(tmp_path), "--image-size", "64", "--raw-size", "128", "--epochs", "1"]
    argv += ["--train-images", "2", "--val-images", "1", "--auxiliary-images", "1", "--device", "cpu"]
    with contextlib.chdir(tmp_path):
        demo.main(argv)
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[2].startswith("| trained (1 epochs) |")
    cells = [float(cell) for cell in table[2].strip("| ").split(" | ")[1:8]]
    assert sum(cells[:3]) == pytest.approx(100.0, abs=0.02)
    assert all(0.0 <= auc <= 1.0 for auc in cells[3:])
    assert (tmp_path / "CheckPoints" / "Model_Demo.pth_0").is_file()
    assert (tmp_path / "match.png").stat().st_size > 0
    assert (tmp_path / "registration.png").is_file()
