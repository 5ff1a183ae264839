"""RetinaDataset parity with the original (eval items) and its imgaug re-implementation (exact ops, distributions)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from kdrepro_shared.errors import DatasetLayoutError
from rkd_retina.dataset.fake_data import write_fake_our_data
from rkd_retina.dataset.retina_dataset import (
    AugmentParams,
    RetinaAugmenter,
    RetinaDataset,
    gaussian_blur,
    linear_contrast,
    multiply,
)

FIX = np.load(Path(__file__).parent / "fixtures" / "eval" / "common_dataset.npz")


@pytest.mark.parity
def test_eval_items_match_original(tmp_path):
    our, aux = write_fake_our_data(tmp_path, size=96)
    ds = RetinaDataset(our, "train.txt", is_train=False, data_shape=(64, 64), auxiliary=aux)
    assert len(ds) == 3
    for i in range(len(ds)):
        image, labelled, label_map, name = ds[i]
        np.testing.assert_array_equal(image.numpy(), FIX[f"ds_img_{i}"])
        if labelled:
            np.testing.assert_array_equal(label_map.numpy(), FIX[f"ds_lab_{i}"])
        else:
            assert name == "[None]" and not label_map.any() and label_map.shape == (1, 64, 64)


@pytest.mark.parity
def test_augmentation_ops_match_imgaug():
    x = FIX["aug_x"]
    for sigma in (0.0005, 0.5, 2.5, 4.0, 5.5):
        np.testing.assert_allclose(gaussian_blur(x.copy(), sigma), FIX[f"aug_blur_{sigma}"], atol=1e-6)
    np.testing.assert_allclose(multiply(x, 1.13), FIX["aug_mul_1.13"], atol=1e-7)
    np.testing.assert_allclose(linear_contrast(x, 0.8), FIX["aug_lc_0.8"], atol=1e-7)


@pytest.mark.parity
def test_augmentation_distribution_matches_imgaug():
    x = FIX["aug_x"]
    aug = RetinaAugmenter(seed=0)
    ratios, blurred = [], []
    for _ in range(4000):
        out = aug(x.copy())
        r = out / x
        blurred.append(not np.allclose(r, r.mean(), rtol=1e-5, atol=0))
        ratios.append(float(out.mean() / x.mean()))
    ratios, blurred = np.array(ratios), np.array(blurred)
    plain = ratios[~blurred]
    ref = FIX["aug_stats"]  # blur rate, mean, std, min, max, q05, q50, q95 of the unblurred mean ratio
    assert abs(blurred.mean() - ref[0]) < 0.03
    assert abs(plain.mean() - ref[1]) < 0.005 and abs(plain.std() - ref[2]) < 0.1 * ref[2]
    assert plain.min() >= 0.75 and plain.max() <= 1.2 * 1.2
    np.testing.assert_allclose(np.quantile(plain, [0.05, 0.5, 0.95]), ref[5:8], atol=0.02)


def test_augmentation_order_and_seed():
    params = AugmentParams(order=(2, 1, 0), multiply=1.1, blur_sigma=None, contrast=0.9)
    x = np.ones((4, 4), np.float32)
    np.testing.assert_allclose(RetinaAugmenter.apply(x, params), 0.99, rtol=1e-6)
    assert RetinaAugmenter(seed=3).sample() == RetinaAugmenter(seed=3).sample()


def test_train_item_single_row_label_and_layout_errors(tmp_path):
    our, aux = write_fake_our_data(tmp_path, size=64, labelled=1, auxiliary=0)
    np.savetxt(our / "Annotations" / "a.txt", [[0.5, 0.25]])
    image, labelled, label_map, name = RetinaDataset(our, data_shape=(32, 32), seed=0)[0]
    assert labelled and name == "a.txt" and image.shape == (1, 32, 32)
    assert label_map.sum() == 1 and label_map[0, 8, 16] == 1
    (our / "Annotations" / "a.txt").write_text("0.5 0.25 0.1\n")
    with pytest.raises(DatasetLayoutError, match="3 columns"):
        RetinaDataset(our, data_shape=(32, 32))[0]
    with pytest.raises(DatasetLayoutError, match="ImageSets"):
        RetinaDataset(tmp_path / "missing")
    (our / "ImageSets" / "val.txt").write_text("Image_ID, Label_ID\n")
    with pytest.raises(DatasetLayoutError, match="lists no existing"):
        RetinaDataset(our, "val.txt")
    assert isinstance(RetinaDataset(our, "train.txt", auxiliary=aux).data[0][0], Path)
    assert torch.is_tensor(image)
