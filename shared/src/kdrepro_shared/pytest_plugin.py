"""pytest plugin of the monorepo (loaded by the root `conftest.py`, or `pytest -p kdrepro_shared.pytest_plugin`):
`gpu` tests skip without CUDA, so `pytest -m gpu` on a machine without a GPU reports skips instead of failures.

Not a `pytest11` entry point on purpose: pytest would then assertion-rewrite every `kdrepro_shared` module, which
breaks `runpy` (`python -m kdrepro_shared.…`) inside tests.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the project's markers, so a package's tests also run outside the monorepo's pytest settings."""
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")
    config.addinivalue_line("markers", "slow: heavy; excluded from the default run")
    config.addinivalue_line("markers", "parity: compares against golden fixtures recorded from the original code")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a `gpu`-marked test when torch sees no CUDA device."""
    if item.get_closest_marker("gpu") is None:
        return
    import torch  # noqa: PLC0415 -- only gpu-marked tests pay for the import here

    if not torch.cuda.is_available():
        pytest.skip("gpu test: no CUDA device")
