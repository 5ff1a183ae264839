"""The shipped config tree equals the original's 27 configs (values and key order) and resolves from anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from letkd.configs import ConfigNotFoundError, known_config_names, load_config

FIXTURE = Path(__file__).parent / "fixtures" / "configs" / "original_configs.json"
ORIGINAL = json.loads(FIXTURE.read_text(encoding="utf-8"))["configs"]
PAPER_NAMES = sorted(ORIGINAL)


def encode(obj: Any) -> Any:
    """The fixture's encoding: tuples marked as such, dict key order kept."""
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(x) for x in obj]}
    if isinstance(obj, list):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    return obj


def key_orders(obj: Any, prefix: str = "") -> dict[str, list[str]]:
    """Key order of every nested dict, by dotted path (dict equality ignores order; construction order does not)."""
    if not isinstance(obj, dict) or "__tuple__" in obj:
        return {}
    orders = {prefix: list(obj)}
    for key, value in obj.items():
        orders.update(key_orders(value, f"{prefix}.{key}"))
    return orders


def test_all_27_paper_configs_are_shipped() -> None:
    shipped = list(known_config_names((Path(__file__).parents[1] / "src" / "letkd" / "configs",)))
    assert len(PAPER_NAMES) == 27
    assert set(PAPER_NAMES) <= set(shipped)
    assert sum(n.endswith(("letKD-1", "letKD-2")) for n in PAPER_NAMES) == 20


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_config_matches_original(name: str) -> None:
    ours = encode(load_config(name))
    assert ours == ORIGINAL[name]
    assert key_orders(ours) == key_orders(ORIGINAL[name])


def test_each_load_is_a_fresh_dict() -> None:
    first = load_config("CIFAR100.resnetv1.RN56")
    first["exp_dir"] = "mutated"
    assert "exp_dir" not in load_config("CIFAR100.resnetv1.RN56")


def test_user_config_in_working_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "CIFAR100" / "resnetv1" / "RN56_RN20"
    user.mkdir(parents=True)
    (user / "letKD-1.py").write_text("config = {'algorithm_type': 'user'}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_config("CIFAR100.resnetv1.RN56_RN20.letKD-1") == {"algorithm_type": "user"}
    assert load_config("CIFAR100.resnetv1.RN56_RN20.letKD-2")["algorithm_type"] == "subclass_quest_value"


def test_unknown_config_lists_near_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigNotFoundError) as err:
        load_config("CIFAR100.resnetv1.RN56_RN2.letKD-1")
    message = str(err.value)
    assert "\n" not in message
    assert "CIFAR100.resnetv1.RN56_RN20.letKD-1" in message


def test_file_without_config_dict_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "CIFAR100").mkdir()
    (tmp_path / "CIFAR100" / "broken.py").write_text("settings = {}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigNotFoundError, match="no module-level dict named `config`"):
        load_config("CIFAR100.broken")
