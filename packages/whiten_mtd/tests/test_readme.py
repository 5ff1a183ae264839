"""The package README's checkpoint table is the registry's own rendering for this paper, so the two cannot drift."""

from __future__ import annotations

from pathlib import Path

from kdrepro_shared.checkpoints import registry_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- registry:start -->", "<!-- registry:end -->"


def test_readme_checkpoint_table_matches_registry() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index(START) + len(START) : text.index(END)].strip()
    assert table == registry_markdown(paper="whiten_mtd").strip(), (
        "README's checkpoint table is stale: paste `python -m kdrepro_shared.checkpoints list --paper "
        "whiten_mtd --markdown` between the registry markers"
    )
