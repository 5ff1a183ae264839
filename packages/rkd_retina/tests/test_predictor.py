"""Predictor and FIRE protocol parity with the original, using a tiny deterministic detector/descriptor."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from rkd_retina.dataset.fire import list_fire_pairs, load_control_points, write_fake_fire
from rkd_retina.predictor import Predictor
from rkd_retina.test_on_FIRE import FireRecord, evaluate_fire, evaluate_pair, main, match_pair

FIXDIR = Path(__file__).parent / "fixtures" / "eval"
SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "retina_samples"


class TinyDetDesc(nn.Module):
    """Deterministic detector/descriptor: fixed DoG detector at full res, fixed 8×8-stride descriptor conv."""

    def __init__(self):
        super().__init__()
        self.det = nn.Conv2d(1, 1, 5, padding=2)
        self.desc = nn.Conv2d(1, 16, 8, stride=8)
        yy, xx = torch.meshgrid(torch.arange(5.0) - 2, torch.arange(5.0) - 2, indexing="ij")
        r2 = xx**2 + yy**2
        dog = torch.exp(-r2 / 2) / 2 - torch.exp(-r2 / 8) / 8
        idx = torch.arange(16 * 64, dtype=torch.float).reshape(16, 1, 8, 8)
        with torch.no_grad():
            self.det.weight.copy_(-dog[None, None] * 20)
            self.det.bias.fill_(-1.0)
            self.desc.weight.copy_(torch.sin(idx * 0.37) * 0.2)
            self.desc.bias.zero_()

    def forward(self, x):
        return torch.sigmoid(self.det(x)), self.desc(x)


def config(size):
    return {
        "PREDICT": {
            "device": "cpu",
            "knn_thresh": 0.9,
            "model_image_height": size,
            "model_image_width": size,
            "model_save_path": "unused",
            "nms_size": 10,
            "nms_thresh": 0.01,
            "use_matching_trick": True,
        }
    }


@pytest.mark.parity
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/data/retina_samples not present")
def test_predictor_pair_matches_original():
    fix = np.load(FIXDIR / "predictor.npz")
    pr = Predictor(config(128), model=TinyDetDesc())
    q, r = str(SAMPLES / "query.jpg"), str(SAMPLES / "refer.jpg")
    from PIL import Image

    qi, ri = pr.image_read(q, r)
    kps, descs = pr.model_run_pair(pr.transform(Image.fromarray(qi)), pr.transform(Image.fromarray(ri)))
    np.testing.assert_array_equal(kps[0].numpy(), fix["pair_kp_q"])
    np.testing.assert_array_equal(kps[1].numpy(), fix["pair_kp_r"])
    np.testing.assert_allclose(descs[0].numpy(), fix["pair_desc_q"], atol=1e-6)
    good, _, _, _, _ = pr.match(q, r)
    np.testing.assert_array_equal(np.array([[m.queryIdx, m.trainIdx] for m in good]), fix["pair_good"])
    h_m, rate, _, _ = pr.compute_homography(q, r)
    np.testing.assert_allclose(h_m, fix["pair_H"], atol=1e-6)
    assert rate == fix["pair_rate"]
    kp1, _ = pr.model_run_one_image(str(SAMPLES / "vistel0_left_0.jpg"))
    np.testing.assert_array_equal(kp1.numpy(), fix["one_kp"])


@pytest.fixture(scope="module")
def fake_fire(tmp_path_factory):
    root = tmp_path_factory.mktemp("fire")
    return root, write_fake_fire(root, size=96)


@pytest.mark.parity
def test_fire_protocol_matches_original_lines(fake_fire, capsys):
    root, _ = fake_fire
    pairs = list_fire_pairs(root / "FIRE")
    assert len(pairs) == 133 and all(p.name != "control_points_P37_1_2" for p in pairs)
    pr = Predictor(config(64), model=TinyDetDesc())
    record = evaluate_fire(pairs, lambda p: match_pair(pr, p, True))
    expected = (FIXDIR / "fire_tiny_stdout.txt").read_text().splitlines()
    assert record.summary_lines() == expected


def test_fire_with_true_homographies_and_failures(fake_fire):
    root, homographies = fake_fire
    pairs = list_fire_pairs(root / "FIRE")
    record = FireRecord()
    for i, pair in enumerate(pairs):
        h_true = homographies[pair.name.split("_")[2]]
        evaluate_pair(record, pair, None if i % 10 == 0 else h_true, None, 0.0 if i % 10 == 0 else 0.5)
    lines = record.summary_lines()
    assert lines[1] == "Failed:10.53%, Inaccurate:0.00%, Acceptable:89.47%"
    assert lines[3].startswith("S: 0.9") and record.auc_record["A"][0] == 1e6 and record.auc_record["S"][1] < 1e-3
    gt = load_control_points(pairs[1].gt_path)
    assert gt.shape == (10, 4)


def test_main_layout_errors(tmp_path, capsys):
    cfg = tmp_path / "test.yaml"
    cfg.write_text(yaml.safe_dump(config(64)))
    write_fake_fire(tmp_path, pairs=["S01", "P01"], size=32)
    with pytest.raises(SystemExit):
        main(["--config", str(cfg), "--data-path", str(tmp_path)])
    assert "FIRE Ground Truth is incomplete" in capsys.readouterr().err
    bigger = cv2.imread(str(tmp_path / "FIRE" / "Images" / "S01_2.jpg"))
    cv2.imwrite(str(tmp_path / "FIRE" / "Images" / "S01_2.jpg"), cv2.resize(bigger, (40, 40)))
    with pytest.raises(SystemExit):
        main(["--config", str(cfg), "--data-path", str(tmp_path)])
    assert "must have the same size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", str(cfg), "--data-path", str(tmp_path / "nowhere")])
    assert "FIRE needs" in capsys.readouterr().err
    one_row = tmp_path / "one.txt"
    one_row.write_text("1 2 3 4\n")
    assert load_control_points(one_row).shape == (1, 4)
