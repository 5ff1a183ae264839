"""The monorepo pytest plugin: a `gpu`-marked test skips (never fails) where torch sees no CUDA device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_gpu_test_skips_without_cuda(tmp_path: Path) -> None:
    (tmp_path / "test_needs_cuda.py").write_text(
        "import pytest\n\n\n@pytest.mark.gpu\ndef test_needs_cuda():\n    raise AssertionError('ran without CUDA')\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides any GPU, so this also holds on a GPU machine
    command = [sys.executable, "-m", "pytest", "-p", "kdrepro_shared.pytest_plugin", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, "-m", "gpu", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "gpu test: no CUDA device" in result.stdout
