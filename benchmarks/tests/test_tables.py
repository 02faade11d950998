"""The README's and the docs' benchmark tables and figures are those ``benchmarks/tables.py`` renders from
``benchmarks/results/*.json``; a number edited by hand fails the check."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1]
ROOT = BENCHMARKS.parent


@pytest.fixture(scope="module")
def tables():
    # a name of its own: ``tables`` is also PyTables' import name
    spec = importlib.util.spec_from_file_location("poems_benchmark_tables", BENCHMARKS / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pages_agree_with_the_results_files(tables, capsys):
    """``python benchmarks/tables.py --check`` passes: every generated block is what its results file gives."""
    rc = tables.main(["--check"])
    out, err = capsys.readouterr()
    assert rc == 0, f"run `python benchmarks/tables.py` after re-running a benchmark:\n{out}\n{err}"


def test_the_readme_holds_every_table_with_its_split_seeds_and_rows(tables):
    readme = (ROOT / "README.md").read_text()
    names = {m["name"] for m in tables.TABLE.finditer(readme)}
    assert {"subtyping", "factors", "train_defaults", "imputation", "speed", "figures"} <= names
    values = {m["name"] for m in tables.VALUE.finditer(readme)}
    assert {"coverage", "gating_vs_fixed", "leaders"} <= values
    block = next(m["body"] for m in tables.TABLE.finditer(readme) if m["name"] == "subtyping")
    assert "benchmarks/results/subtyping.json" in block and "Training seeds 0–4" in block
    for column in ("k-means NMI, all", "k-means NMI, test", "KNN accuracy, all", "KNN accuracy, test"):
        assert column in block
    for method in ("PCA", "MOFA+", "MOFA-FLEX", "POEMS", "POEMS (fixed gating), ablation", "POEM (dense decoder)"):
        for dataset in ("breast_tcga", "rosmap"):
            assert re.search(rf"\| {re.escape(dataset)} \(.*?\) \| {re.escape(method)}", block), (dataset, method)


def _copy_pages(tables, tmp_path, monkeypatch) -> Path:
    """The pages copied to ``tmp_path``, and the module pointed at them (the results stay where they are)."""
    for page in tables.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / page, tmp_path / page)
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    return tmp_path


def test_a_number_edited_by_hand_fails_the_check(tables, tmp_path, monkeypatch, capsys):
    root = _copy_pages(tables, tmp_path, monkeypatch)
    readme = root / "README.md"
    text = readme.read_text()
    block = next(m for m in tables.TABLE.finditer(text) if m["name"] == "subtyping")
    number = re.search(r"0\.\d{3}", block["body"])
    edited = f"0.{(int(number.group()[2:]) + 1) % 1000:03d}"
    start = block.start("body") + number.start()
    readme.write_text(text[:start] + edited + text[start + 5 :])
    assert tables.main(["--check"]) == 1
    assert edited in capsys.readouterr().out  # the diff shows the line as written
    # rewriting restores the numbers of the results file
    assert tables.main([]) == 0
    assert readme.read_text() == text


def test_a_figure_in_a_sentence_edited_by_hand_fails_the_check(tables, tmp_path, monkeypatch):
    root = _copy_pages(tables, tmp_path, monkeypatch)
    page = root / "docs" / "model.md"
    text = page.read_text()
    block = next(m for m in tables.VALUE.finditer(text) if m["name"] == "coverage")
    page.write_text(text[: block.start("body")] + "90 % of the held-out values" + text[block.end("body") :])
    assert tables.main(["--check"]) == 1


def test_hand_written_numbers_and_quotes_outside_the_blocks_fail_the_check(tables, tmp_path, monkeypatch, capsys):
    root = _copy_pages(tables, tmp_path, monkeypatch)
    readme = root / "README.md"
    text = readme.read_text()
    anchor = "**How many factors**"
    readme.write_text(text.replace(anchor, "POEMS reaches an NMI of 0.999 on breast_tcga.\n\n" + anchor, 1))
    assert tables.main(["--check"]) == 1
    assert "outside a generated block" in capsys.readouterr().err

    readme.write_text(text)
    notes = root / "benchmarks" / "README.md"
    original = notes.read_text()
    notes.write_text(original + "\nIts 90 % intervals cover 90 % of the values; training takes 12 s on breast_tcga.\n")
    assert tables.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "interval coverage quoted outside" in err and "training time quoted outside" in err


def test_a_value_marker_never_opens_a_line(tables):
    """CommonMark reads a line that starts with ``<!--`` as raw HTML: a figure there would not render as text."""
    assert tables.values_at_line_start("text <!-- value: coverage -->x<!-- /value -->") == []
    assert tables.values_at_line_start("text\n  <!-- value: coverage -->x<!-- /value -->") == ["coverage"]


def test_one_figure_per_quantity(tables):
    """Interval coverage and training time come from one results file each."""
    assert "benchmarks/results/imputation.json" in tables.value_coverage()
    assert "benchmarks/results/speed_train.json" in tables.value_train_time()
    for page in tables.PAGES:
        path = ROOT / page
        if path.exists():
            assert tables.hand_quotes(path.read_text()) == [], page
