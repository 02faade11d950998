"""The code a reader copies first runs as written: the README's quick start and the docs landing page's example."""

from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path, heading: str) -> list[str]:
    """The ```python blocks of ``path`` between ``heading`` and the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    blocks, inside, fence, current = [], False, None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if fence is None and line.startswith("#"):  # a heading (a "#" inside a code block is a comment)
            depth = len(line) - len(line.lstrip("#"))
            if inside and depth <= level:
                break
            inside = inside or line == heading
        elif line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
            else:
                if inside and fence == "python":
                    blocks.append("\n".join(current))
                fence, current = None, []
        elif fence is not None:
            current.append(line)
    return blocks


@pytest.mark.slow
@pytest.mark.parametrize(("page", "heading"), [("README.md", "## Quick start"), ("docs/index.md", "## Try it")])
def test_example_runs_as_written(page, heading, tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / page, heading)
    assert blocks, f"no python block under {heading!r} in {page}"
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # anything the example writes stays in the test's folder
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"{page}:{heading}", "exec"), namespace)
    # the example reached its end with the results on the MuData it trained on
    assert "X_poems" in namespace["mdata"].obsm
