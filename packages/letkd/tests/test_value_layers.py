"""The letKD value layers vs the original (adagorgun/letKD-framework @ 4fb2289) on fixed tensors.

Golden values: fixtures/value_layers/layers.pt (see its README). Weights come from `letkd.testing.fill_deterministic`,
the recipe the recorder applied to the original modules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures.miscellaneous import valueLayer, valueLayer_subclass
from letkd.testing import fill_deterministic, generator, write_fake_lda

FIXTURE = Path(__file__).parent / "fixtures" / "value_layers" / "layers.pt"
pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(FIXTURE, weights_only=True)


@pytest.mark.parametrize("ratio", [1.0, 0.1])
def test_penultimate_value_layer_matches_original(golden: dict, ratio: float) -> None:
    opt = {"emb_size": 4096, "inp_size": 64} | ({"value_ratio": ratio} if ratio != 1.0 else {})
    layer = fill_deterministic(valueLayer.create_model(opt), "valueLayer")
    tag = f"value_r{ratio}"
    assert list(layer.state_dict()) == golden[f"{tag}/keys"]
    scores = torch.randn(2, 4096, 8, 8, generator=generator(1)) * 2
    x = torch.randn(2, 64, 8, 8, generator=generator(2))
    layer.train()
    out, value = layer(scores.clone(), x)
    torch.testing.assert_close(out, golden[f"{tag}/train_out"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, golden[f"{tag}/train_value"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.bn.running_mean, golden[f"{tag}/running_mean"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(layer.bn.running_var, golden[f"{tag}/running_var"], atol=1e-6, rtol=1e-5)
    layer.eval()
    out, value = layer(scores.clone(), x)
    torch.testing.assert_close(out, golden[f"{tag}/eval_out"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, golden[f"{tag}/eval_value"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, ratio * value + x)


def test_value_layer_parameters_and_init() -> None:
    """Conv2dCos(K→C, scale 1 learnable) weight ~ N(0, 2/K), BN over K templates; C·K + 1 + 2K trainable."""
    torch.manual_seed(0)
    layer = valueLayer.valueLayer(inp_size=64, emb_size=4096)
    assert layer.conv_value.layers.weight.shape == (64, 4096, 1, 1)
    assert layer.conv_value.layers.scale.item() == 1.0 and layer.conv_value.layers.scale.requires_grad
    assert abs(layer.conv_value.layers.weight.std().item() - (2 / 4096) ** 0.5) < 1e-3
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 64 * 4096 + 1 + 2 * 4096


@pytest.mark.parametrize("case", [("sub", 64, 64, 8, False), ("sub_down", 256, 99, 4, True)], ids=["rn56", "downscale"])
def test_intermediate_value_layer_matches_original(golden: dict, tmp_path: Path, case: tuple) -> None:
    name, dim, rank, size, downscale = case
    files = write_fake_lda(tmp_path, dim, rank, seed=22 if downscale else 21)
    opt = {"emb_size": 800, "inp_size": 64, "num_classes": 100, **files}
    if downscale:
        opt |= {"downscale": True, "value_ratio": 0.2}
    layer = fill_deterministic(valueLayer_subclass.create_model(opt), "valueLayer_0")
    assert list(layer.state_dict()) == golden[f"{name}/keys"]
    assert not layer.LDA.weight.requires_grad and not layer.LDA.bias.requires_grad
    torch.testing.assert_close(layer.LDA.weight, golden[f"{name}/lda_weight"])
    torch.testing.assert_close(layer.LDA.bias, golden[f"{name}/lda_bias"])
    hint = torch.rand(2, dim, 8, 8, generator=generator(5))
    scores = torch.randn(2, 800, size, size, generator=generator(6))
    in_block = torch.randn(2, 64, size, size, generator=generator(7))
    layer.train()
    out, value, loss_sub, record = layer(hint, scores.clone(), in_block, torch.tensor([3, 97]), {})
    torch.testing.assert_close(loss_sub, golden[f"{name}/loss_sub"], atol=1e-5, rtol=1e-5)
    assert record == pytest.approx(golden[f"{name}/record"], abs=1e-5)
    torch.testing.assert_close(out, golden[f"{name}/out"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, golden[f"{name}/value"], atol=1e-5, rtol=1e-5)


def test_intermediate_layer_buffers_follow_the_module_and_stay_out_of_the_state_dict(tmp_path: Path) -> None:
    files = write_fake_lda(tmp_path, 64, 64)
    layer = valueLayer_subclass.create_model({"emb_size": 800, "inp_size": 64, "num_classes": 100, **files})
    assert "cluster_centers" not in layer.state_dict() and "teacher_scores" not in layer.state_dict()
    assert layer.to(torch.float64).cluster_centers.dtype == torch.float64  # moved by .to(), like .cuda()
    assert layer.teacher_scores.shape == (800, 800)


def test_intermediate_layer_errors_name_the_missing_file_and_the_command(tmp_path: Path) -> None:
    files = write_fake_lda(tmp_path / "experiments" / "LDA" / "CIFAR100" / "resnetv1" / "RN56", 64, 64)
    Path(files["scores_filename"]).unlink()
    opt = {"emb_size": 800, "inp_size": 64, "num_classes": 100, **files}
    with pytest.raises(KdReproError, match=r"final_scores_8\.npy is missing.*config=CIFAR100\.resnetv1\.RN56 LDA="):
        valueLayer_subclass.create_model(opt)
    with pytest.raises(KdReproError, match="expected 400 centers"):
        write_fake_lda(tmp_path / "ok", 64, 64)
        valueLayer_subclass.create_model(opt | {"emb_size": 400} | write_fake_lda(tmp_path / "ok", 64, 64))


@pytest.mark.gpu
def test_intermediate_layer_runs_on_cuda(tmp_path: Path) -> None:
    files = write_fake_lda(tmp_path, 64, 64)
    layer = valueLayer_subclass.create_model({"emb_size": 800, "inp_size": 64, "num_classes": 100, **files}).cuda()
    out, _, loss, _ = layer(
        torch.rand(2, 64, 8, 8).cuda(),
        torch.randn(2, 800, 8, 8).cuda(),
        torch.randn(2, 64, 8, 8).cuda(),
        torch.tensor([3, 97]).cuda(),
        {},
    )
    assert out.is_cuda and torch.isfinite(loss)
