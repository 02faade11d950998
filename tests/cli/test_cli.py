"""The ``poems-mu`` command line: fit on a small .h5mu, the demo, and errors without stack traces."""

import subprocess
import sys
import warnings
from importlib.metadata import entry_points

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import poems_mu as pm
from poems_mu.cli import main


def _tiny_h5mu(path, n=40, seed=0, counts=False):
    """Two modalities driven by one two-group factor; 'b' is absent (not padded) for the last 10 samples.

    With ``counts``, also a count modality 'rna' (integers, every sample) and obs columns 'plate' (a batch),
    'age' (numeric) and 'depth' (library sizes).
    """
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    group = np.repeat(["g1", "g2"], n // 2)
    z = np.where(group == "g1", -1.0, 1.0)[:, None]
    a = ad.AnnData(
        (z @ rng.normal(size=(1, 12)) + 0.3 * rng.normal(size=(n, 12))).astype(np.float32),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"a{j}" for j in range(12)]),
    )
    a.layers["raw"] = a.X.copy()
    xb = (z @ rng.normal(size=(1, 8)) + 0.3 * rng.normal(size=(n, 8))).astype(np.float32)
    b = ad.AnnData(xb[:-10], obs=pd.DataFrame(index=names[:-10]), var=pd.DataFrame(index=[f"b{j}" for j in range(8)]))
    mods = {"a": a, "b": b}
    if counts:
        rate = np.exp(0.8 * z @ rng.normal(size=(1, 10)) + 1.5)
        mods["rna"] = ad.AnnData(
            rng.poisson(rate).astype(np.float32),
            obs=pd.DataFrame(index=names),
            var=pd.DataFrame(index=[f"r{j}" for j in range(10)]),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
    mdata.obs["group"] = pd.Categorical(group)
    if counts:
        mdata.obs["plate"] = pd.Categorical(np.tile(["p1", "p2"], n // 2))
        mdata.obs["age"] = rng.uniform(30, 80, size=n)
        mdata.obs["depth"] = mods["rna"].X.sum(1) + 1.0
    mdata.write(str(path))
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """`poems-mu fit` run once on the tiny file; returns (input, output, stdout)."""
    tmp = tmp_path_factory.mktemp("cli_fit")
    src = _tiny_h5mu(tmp / "in.h5mu")
    out = tmp / "out.h5mu"
    argv = [str(src), "-o", str(out), "--n-latent", "3", "--max-epochs", "3", "--label-key", "group", "--quiet"]
    argv += ["--layers", "a=raw", "--accelerator", "cpu", "--devices", "1"]
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["fit", *argv]) == 0
    return src, out, buf.getvalue()


def test_entry_point_is_declared():
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "poems-mu"]
    assert ep.value == "poems_mu.cli:main"


def test_fit_writes_results_and_model(fitted):
    src, out, stdout = fitted
    result = md.read_h5mu(out)
    assert result.obsm["X_poems"].shape == (40, 3)
    gates = result.obsm["poems_gates"]
    assert list(gates.columns) == ["a", "b"]
    assert (gates["b"].to_numpy()[-10:] == 0).all()  # absent samples get exactly zero weight
    np.testing.assert_allclose(gates.to_numpy().sum(1), 1.0, rtol=1e-5)
    assert result["a"].varm["poems_W"].shape == (12, 3)
    assert result["b"].n_obs == 30  # the missing block is still missing, not padded
    stored = result.uns["poems"]["subtyping"]["X_poems"]
    assert stored["label_key"] == "group" and 0 <= stored["metrics"]["kmeans_accuracy"]["mean"] <= 1
    # the model is saved next to the output and reloads to the same latent
    model_dir = out.with_name("out_model")
    assert model_dir.is_dir()
    model = pm.POEMS.load(str(model_dir), result)
    np.testing.assert_allclose(model.get_latent_representation(), result.obsm["X_poems"], atol=1e-5)
    assert model.module.n_latent == 3
    # summary: modalities, epochs, metrics, files
    assert "epochs       3" in stdout
    assert "kmeans_accuracy" in stdout and "knn_accuracy" in stdout
    assert str(out) in stdout and str(model_dir) in stdout
    assert "  b " in stdout and "30 samples" in stdout
    assert "contribution" in stdout and "zeros" in stdout and "slab" in stdout  # sparsity reported honestly


def test_fit_with_several_runs_writes_their_consensus_and_keeps_the_first_run(fitted, tmp_path):
    src, first, _ = fitted
    out = tmp_path / "runs.h5mu"
    argv = [str(src), "-o", str(out), "--n-latent", "3", "--max-epochs", "3", "--label-key", "group", "--quiet"]
    argv += ["--layers", "a=raw", "--accelerator", "cpu", "--devices", "1", "--runs", "3"]
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["fit", *argv]) == 0
    result, single = md.read_h5mu(out), md.read_h5mu(first)
    # the first run is the one of a single fit with the same seed: its results and saved model are unchanged
    np.testing.assert_allclose(result.obsm["X_poems"], single.obsm["X_poems"], atol=1e-6)
    model = pm.POEMS.load(str(out.with_name("runs_model")), result)
    np.testing.assert_allclose(model.get_latent_representation(), result.obsm["X_poems"], atol=1e-5)
    summary = result.uns["poems"]["consensus"]["X_poems_consensus"]
    assert int(summary["n_models"]) == 3
    assert result.obsm["X_poems_consensus"].shape == (40, int(summary["n_components"]))
    stored = result.uns["poems"]["subtyping"]
    assert set(stored) == {"X_poems", "X_poems_consensus"}
    stdout = buf.getvalue()
    assert "Run 3 of 3 (seed 2)" in stdout and "subtyping of X_poems_consensus" in stdout


def test_fit_refuses_several_runs_on_several_devices(fitted, tmp_path, capsys):
    src, _, _ = fitted
    out = tmp_path / "x.h5mu"
    assert main(["fit", str(src), "-o", str(out), "--runs", "2", "--devices", "2", "--quiet"]) == 2
    assert "--runs trains its runs one after another on one device" in capsys.readouterr().err
    assert not out.exists()


def test_fit_refuses_to_overwrite(fitted, capsys):
    src, out, _ = fitted
    before = out.stat().st_mtime_ns
    assert main(["fit", str(src), "-o", str(out), "--max-epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poems-mu: error: ") and "--overwrite" in err and "Traceback" not in err
    assert out.stat().st_mtime_ns == before


def test_fit_overwrite_replaces_output(fitted, tmp_path, capsys):
    src, _, _ = fitted
    out = tmp_path / "res.h5mu"
    args = ["fit", str(src), "-o", str(out), "--n-latent", "2", "--max-epochs", "1", "--quiet", "--modalities", "a"]
    assert main(args) == 0
    assert md.read_h5mu(out).obsm["X_poems"].shape == (40, 2)
    assert main([*args[:5], "4", *args[6:], "--overwrite"]) == 0
    result = md.read_h5mu(out)
    assert result.obsm["X_poems"].shape == (40, 4)
    assert list(result.obsm["poems_gates"].columns) == ["a"]
    capsys.readouterr()
    # refitting on an output replaces the earlier results in the new file and leaves the input alone
    again = tmp_path / "again.h5mu"
    assert main(["fit", str(out), "-o", str(again), "--n-latent", "2", "--max-epochs", "1", "--quiet"]) == 0
    assert "earlier POEMS results" in capsys.readouterr().out
    assert md.read_h5mu(again).obsm["X_poems"].shape == (40, 2)
    assert list(md.read_h5mu(again).obsm["poems_gates"].columns) == ["a", "b"]
    assert md.read_h5mu(out).obsm["X_poems"].shape == (40, 4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--modalities", "rna"], "not found in the MuData"),
        (["--layers", "a=counts"], "counts"),
        (["--layers", "a:raw", "b=x"], "MODALITY=LAYER"),
        (["--label-key", "nope"], "nope"),
        (["--likelihood", "a=poisson"], "Modality 'a': unknown likelihood 'poisson'"),
        (["--likelihood", "b=gaussian", "a=nb"], "Modality 'a' is modelled with likelihood 'nb'"),  # non-integer
        (["--likelihood", "nb"], "negative or non-integer values"),
        (["--likelihood", "c=nb"], "not registered"),
        (["--likelihood", "a="], "--likelihood expects MODALITY=LIKELIHOOD"),
        (["--likelihood", "=nb"], "--likelihood expects MODALITY=LIKELIHOOD"),
        (["--likelihood", "a=nb", "--likelihood", "a=gaussian"], "--likelihood names modality 'a' twice"),
        (["--batch-key", "plate"], "'plate' is not a column of mdata.obs"),
        (["--categorical-covariate", "site"], "'site' is not a column of mdata.obs"),
        (["--continuous-covariate", "group"], "is not numeric"),
        (["--batch-key", "group", "--categorical-covariate", "group"], "more than once"),
        (["--size-factor-key", "depth"], "'depth' is not a column of mdata.obs"),
        (["--size-factor-key", "group"], "not numeric"),
        (["--modality-dropout", "1.5"], "modality_dropout must be in [0, 1), got 1.5"),
    ],
)
def test_fit_bad_arguments_give_one_line_errors(fitted, tmp_path, capsys, extra, message):
    src, _, _ = fitted
    out = tmp_path / "x.h5mu"
    assert main(["fit", str(src), "-o", str(out), "--max-epochs", "1", "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poems-mu: error: ") and message in err
    assert "Traceback" not in err
    if message != "nope":  # errors found before training write nothing
        assert not out.exists()
        assert not out.with_name("x_model").exists()


@pytest.fixture(scope="module")
def fitted_counts(tmp_path_factory):
    """`poems-mu fit` with a count modality, a batch, a continuous covariate and library sizes."""
    tmp = tmp_path_factory.mktemp("cli_counts")
    src = _tiny_h5mu(tmp / "in.h5mu", counts=True)
    out = tmp / "out.h5mu"
    argv = [str(src), "-o", str(out), "--n-latent", "3", "--max-epochs", "2", "--quiet", "--accelerator", "cpu"]
    argv += ["--likelihood", "rna=nb", "--batch-key", "plate", "--continuous-covariate", "age"]
    argv += ["--size-factor-key", "depth", "--devices", "1", "--modality-dropout", "0.25"]
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["fit", *argv]) == 0
    return src, out, buf.getvalue()


def test_fit_with_count_likelihood_and_covariates(fitted_counts):
    src, out, stdout = fitted_counts
    result = md.read_h5mu(out)
    stored = result.uns["poems"]
    assert dict(stored["likelihoods"]) == {"a": "gaussian", "b": "gaussian", "rna": "nb"}
    assert list(stored["covariates"]) == ["plate=p1", "plate=p2", "age"]
    assert "poems_nb_theta" in result["rna"].var and "poems_sigma" not in result["rna"].var
    assert "poems_sigma" in result["a"].var
    # the saved model was set up with the covariates and reloads to the same latent
    model = pm.POEMS.load(str(out.with_name("out_model")), result)
    assert model.likelihoods == {"a": "gaussian", "b": "gaussian", "rna": "nb"}
    setup = model.adata_manager.registry["setup_args"]
    assert setup["batch_key"] == "plate" and list(setup["continuous_covariate_keys"]) == ["age"]
    assert setup["size_factor_key"] == "depth" and model.module.modality_dropout == 0.25
    np.testing.assert_allclose(model.get_latent_representation(), result.obsm["X_poems"], atol=1e-5)
    # the summary names each modality's likelihood, the covariates and the library sizes
    lines = stdout.splitlines()
    (rna,) = [ln for ln in lines if ln.startswith("  rna ")]
    assert " nb " in rna and "10 features" in rna and "40 samples" in rna
    (a_line,) = [ln for ln in lines if ln.startswith("  a ")]
    assert " gaussian " in a_line
    assert "covariates   batch plate (2 categories), age (continuous)" in lines
    assert "library size obs 'depth' (nb modalities)" in lines


def test_fit_single_likelihood_for_all_modalities(fitted_counts, tmp_path, capsys):
    src, _, _ = fitted_counts
    out = tmp_path / "nb.h5mu"
    argv = ["fit", str(src), "-o", str(out), "--modalities", "rna", "--likelihood", "nb", "--n-latent", "2"]
    assert main([*argv, "--max-epochs", "1", "--quiet", "--categorical-covariate", "plate", "group"]) == 0
    result = md.read_h5mu(out)
    assert dict(result.uns["poems"]["likelihoods"]) == {"rna": "nb"}
    assert list(result.uns["poems"]["covariates"]) == ["plate=p1", "plate=p2", "group=g1", "group=g2"]
    stdout = capsys.readouterr().out
    assert "covariates   plate (2 categories), group (2 categories)" in stdout  # no batch key: not called a batch
    assert "library size" not in stdout


def test_fit_without_covariates_prints_no_covariate_line(fitted):
    _, _, stdout = fitted
    assert "covariates" not in stdout and "library size" not in stdout
    assert all(" gaussian " in ln for ln in stdout.splitlines() if ln.startswith(("  a ", "  b ")))


def test_fit_size_factors_need_a_count_modality(fitted_counts, tmp_path, capsys):
    src, _, _ = fitted_counts
    out = tmp_path / "x.h5mu"
    assert main(["fit", str(src), "-o", str(out), "--size-factor-key", "depth", "--max-epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poems-mu: error: ") and "likelihood 'nb'" in err and "Traceback" not in err
    assert not out.exists()


def test_fit_help_lists_the_model_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--likelihood MOD=LIKELIHOOD", "--batch-key KEY", "--size-factor-key KEY"):
        assert option in text
    assert "--categorical-covariate KEY" in text and "--continuous-covariate KEY" in text and "bernoulli" in text


def test_fit_missing_or_unreadable_input(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nothing.h5mu"), "-o", str(tmp_path / "o.h5mu")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.h5mu"
    bad.write_text("not hdf5")
    assert main(["fit", str(bad), "-o", str(tmp_path / "o.h5mu")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poems-mu: error: cannot read") and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(bad), "-o", str(tmp_path / "o.h5mu"), "--max-epochs", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.subprocess
def test_error_in_a_subprocess_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "poems_mu.cli", "fit", str(tmp_path / "missing.h5mu"), "-o", str(tmp_path / "o.h5mu")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("poems-mu: error:") and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_demo_writes_data_figures_and_metrics(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path), "--max-epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    written = {p.name for p in tmp_path.iterdir()}
    expected = {"poems_demo.h5mu", "poems_demo_umap.png", "poems_demo_gates.png", "poems_demo_loadings.png"}
    assert expected <= written
    for name in expected - {"poems_demo.h5mu"}:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / name).stat().st_size > 5000
    result = md.read_h5mu(tmp_path / "poems_demo.h5mu")
    assert result.obsm["X_poems"].shape[0] == 220
    assert result["protein"].n_obs == 150
    assert "kmeans_accuracy" in out and "knn_accuracy" in out and "epochs       2" in out
    for mod in ("mrna", "mirna", "protein"):
        assert f"  {mod} " in out
    # a second run refuses to clobber the outputs
    assert main(["demo", "--out-dir", str(tmp_path), "--max-epochs", "1", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.subprocess
def test_fit_on_two_cpu_processes_with_ddp(tmp_path):
    """--devices 2 trains with DDP (two CPU processes here); only rank 0 writes and prints the summary."""
    src = _tiny_h5mu(tmp_path / "in.h5mu", n=60)
    out = tmp_path / "out.h5mu"
    cmd = [sys.executable, "-m", "poems_mu.cli", "fit", str(src), "-o", str(out), "--accelerator", "cpu"]
    cmd += ["--devices", "2", "--max-epochs", "2", "--n-latent", "3", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("== POEMS fit") == 1 and proc.stdout.count("Training POEMS on") == 1
    result = md.read_h5mu(out)
    assert result.obsm["X_poems"].shape == (60, 3)
    model = pm.POEMS.load(str(tmp_path / "out_model"), result)
    np.testing.assert_allclose(model.get_latent_representation(), result.obsm["X_poems"], atol=1e-5)
