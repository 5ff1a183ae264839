"""The demo: its data read back by the real readers, its teacher files by the real loaders, its argv by the real
parsers, the table it parses from oxford_paris_eval's output, and (slow) a full run through the entry scripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdrepro_shared.errors import KdReproError
from whiten_mtd import demo, gld_distill_main, gld_pca_learn_main, oxford_paris_eval_main
from whiten_mtd.datasets.gld import read_image_ids, read_landmark_groups
from whiten_mtd.datasets.oxford_paris import OxfordParisDataset
from whiten_mtd.models.distill_model import load_student_checkpoint
from whiten_mtd.models.teachers import teacher_models


def test_defaults_and_checks() -> None:
    args = demo.parse_args([])
    assert (args.imsize, args.styles, args.batch_size, args.output_dir) == (32, 4, 10, Path("output/whiten_mtd_demo"))
    assert (args.pca_dim, args.multiscale, args.raw_teachers) == (16, False, False)
    assert demo.parse_args(["--out", "x"]).output_dir == Path("x")
    for bad in (["--styles", "2"], ["-b", "41"], ["--epochs", "0"], ["--pca-dim", "0"], ["--finetune-steps", "0"]):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)


def test_style_groups_and_gnd_roles() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8)
    digits = np.repeat([0, 1], 30)
    groups = demo.style_groups(images, digits, demo.style_bounds(images, digits, 4))
    assert set(groups.tolist()) == {0, 1, 2, 3}
    assert all(np.bincount(groups[digits == d], minlength=4).min() >= 6 for d in (0, 1))  # about 30 / 4 each
    assert (demo.landmark_labels(digits, groups, 4) // 4 == digits).all()
    queries, database = [0, 30], list(range(1, 30)) + list(range(31, 60))
    gnd = demo.revisitop_gnd(digits, groups, queries, database)
    for q, entry in zip(queries, gnd, strict=True):
        same_digit = {j for j, i in enumerate(database) if digits[i] == digits[q]}
        assert set(entry["easy"]) | set(entry["junk"]) | set(entry["hard"]) == same_digit
        for role, gaps in (("easy", {0}), ("junk", {1}), ("hard", {2, 3})):
            assert {abs(int(groups[database[j]]) - int(groups[q])) for j in entry[role]} <= gaps


def test_demo_data_reads_back(tmp_path: Path) -> None:
    args = demo.parse_args([])
    data = demo.write_demo_data(tmp_path, args)
    groups = read_landmark_groups(tmp_path / "gldv2")
    assert len(groups) == data["landmarks"] == 40
    assert sum(map(len, groups)) == len(read_image_ids(tmp_path / "gldv2")) == 1500
    queries = OxfordParisDataset(tmp_path, demo.DATASET, "query")
    database = OxfordParisDataset(tmp_path, demo.DATASET, "database")
    assert (len(queries), len(database)) == (data["queries"], data["database"]) == (20, 277)
    gnd = database.cfg["gnd"]
    assert all(len(g["easy"]) + len(g["hard"]) > 0 for g in gnd)
    assert sum(len(g["hard"]) > 0 for g in gnd) >= 15  # Hard has positives for most queries


def test_teacher_files_load_with_the_real_factories(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trunk = demo.teacher_trunk(3.0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = trunk(x)
    for name in demo.TEACHERS:
        demo.write_teacher_file(name, trunk.state_dict(), tmp_path)
        teacher = teacher_models[name](tmp_path, gem_p=3.0).eval()
        with torch.no_grad():
            torch.testing.assert_close(teacher(x), expected)


def test_random_student_is_a_loadable_checkpoint(tmp_path: Path) -> None:
    path = demo.write_random_student(tmp_path / "init.pt", 3.0, seed=0)
    student = load_student_checkpoint(path, "resnet18")
    again = load_student_checkpoint(demo.write_random_student(tmp_path / "again.pt", 3.0, seed=0), "resnet18")
    torch.testing.assert_close(student.state_dict(), again.state_dict())


def test_argv_parse_with_the_real_scripts() -> None:
    args = demo.parse_args(["--epochs", "3", "-b", "8"])
    pca = gld_pca_learn_main.get_args_parser().parse_args(demo.pca_learn_argv("mocov3", args))
    assert (pca.teacher, pca.imsize, pca.num_samples, pca.world_size, pca.embed_dim) == ("mocov3", 32, -1, 1, 16)
    assert pca.dump_to.endswith("pca_weights/mocov3_pca_512d_svd_224x224_p1.pt")
    distill = gld_distill_main.get_args_parser().parse_args(demo.distill_argv(args))
    assert (distill.teachers, distill.batch_size, distill.epochs, distill.snapshot_step) == (
        list(demo.TEACHERS),
        8,
        3,
        3,
    )
    assert distill.no_imagenet_init and distill.strategy == "maxmin" and distill.st == distill.tt == 0.05
    assert distill.lr == 2e-3
    rows = demo.evaluations(args, "checkpoints/checkpoint_3.pt")
    assert len(rows) == 4
    for _, _, flags in rows:
        ev = oxford_paris_eval_main.get_args_parser().parse_args(demo.eval_argv(flags, args))
        assert not ev.multiscale and ev.p == 3.0 and ev.dataset == "roxford5k"
    assert oxford_paris_eval_main.get_args_parser().parse_args(demo.eval_argv([], demo.parse_args(["-ms"]))).multiscale
    assert len(demo.evaluations(demo.parse_args(["--raw-teachers"]), "x")) == 6


def test_entry_scripts_are_found() -> None:
    for script in ("gld_pca_learn", "gld_distill", "oxford_paris_eval"):
        assert Path(demo.script_command(script)[-1]).name == f"{script}.py"


def test_scores_parse_from_the_eval_output_lines() -> None:
    results = {
        "easy": (0.5, np.array([1.0, 0.8, 0.6])),
        "medium": (0.4567, np.array([1.0, 0.7, 0.55])),
        "hard": (0.1234, np.array([0.5, 0.4, 0.35])),
    }
    lines = oxford_paris_eval_main.format_results("roxford5k", results)
    output = "\n".join(f"2026-01-01 00:00:00 - image retrieval - INFO - {line}" for line in lines)
    scores = demo.parse_scores(output)
    assert scores == demo.Scores(45.67, 12.34, (100.0, 70.0, 55.0), (50.0, 40.0, 35.0))
    with pytest.raises(KdReproError):
        demo.parse_scores("nothing here")


def test_format_table() -> None:
    row = demo.Row("student", "512-d", demo.Scores(45.67, 12.3, (100.0, 70.0, 55.0), (50.0, 40.0, 35.0)), 12.4)
    assert demo.format_table([row]).splitlines()[2] == (
        "| student | 512-d | 45.67 | 12.30 | 100.00 | 70.00 | 55.00 | 50.00 | 40.00 | 35.00 | 12 |"
    )


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--out", str(tmp_path), "--teacher-steps", "2", "--finetune-steps", "2", "--epochs", "1", "--device", "cpu"]
    demo.main(argv)
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + 4
    for line in table[2:]:
        cells = [float(cell) for cell in line.strip("| ").split(" | ")[2:10]]
        assert all(0.0 <= cell <= 100.0 for cell in cells)
    assert (tmp_path / "checkpoints" / "checkpoint_1.pt").is_file()
    assert (tmp_path / "weights" / "pca_weights" / "barlowtwins_pca_512d_svd_224x224_p1.pt").is_file()
