"""The package README's checkpoint table is the registry's own rendering for this paper, so the two cannot drift."""

from __future__ import annotations

from pathlib import Path

from kdrepro_shared.checkpoints import registry_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- registry:start -->", "<!-- registry:end -->"


def test_readme_checkpoint_table_matches_registry() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index(START) + len(START) : text.index(END)].strip()
    assert table == registry_markdown(paper="letkd").strip(), (
        "README's checkpoint table is stale: paste `python -m kdrepro_shared.checkpoints list --paper letkd "
        "--markdown` between the registry markers"
    )


def test_readme_names_every_paper_pair_config() -> None:
    text = README.read_text(encoding="utf-8")
    for pair in ("WRN.WRN40w2_WRN16w2", "resnetv1.RN56_RN20", "cross_model.RN50_MNv2", "cross_model.RN32x4_SNv2"):
        assert f"`{pair}`" in text
