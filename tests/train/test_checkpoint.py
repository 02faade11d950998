"""Training checkpoints: a run killed with SIGKILL resumes to the same parameters as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu import InvalidModelFolder

HERE = Path(__file__).resolve().parents[1] / "_scripts"
sys.path.insert(0, str(HERE))
from checkpoint_run import MODEL, TRAIN, planted_mdata, toy_mdata  # noqa: E402


def _run(mode, ckdir, out, kill_after, n_restarts, data="toy"):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(HERE / "checkpoint_run.py"),
        mode,
        str(ckdir),
        str(out),
        str(kill_after),
        str(n_restarts),
        data,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=Path(out).parent)


@pytest.mark.slow
@pytest.mark.subprocess
# (55, 2): killed in the second restart (the first runs all of its 40 epochs)
@pytest.mark.parametrize(("kill_after", "n_restarts"), [(7, 1), (55, 2)])
def test_a_sigkilled_run_resumes_to_the_same_parameters_bit_for_bit(tmp_path, kill_after, n_restarts):
    ckdir = tmp_path / "ckpt"
    ref = _run("plain", "", tmp_path / "plain.npz", kill_after, n_restarts)
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = _run("kill", ckdir, tmp_path / "never.npz", kill_after, n_restarts)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "never.npz").exists()
    info = json.loads((ckdir / "poems_resume.json").read_text())
    assert not info["complete"] and info["restart"] == n_restarts - 1 and info["epoch"] % 2 == 0
    # the dead run's checkpoint is a model folder: its latest parameters load
    crashed = pm.POEMS.load(ckdir, toy_mdata())
    assert crashed.is_trained and np.isfinite(crashed.get_latent_representation()).all()
    assert len(crashed.history["elbo_train"]) >= info["epoch"]
    resumed = _run("resume", ckdir, tmp_path / "resumed.npz", kill_after, n_restarts)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = np.load(tmp_path / "plain.npz"), np.load(tmp_path / "resumed.npz")
    assert a.files == b.files
    for key in a.files:  # every parameter and buffer, and the held-out history
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert json.loads((ckdir / "poems_resume.json").read_text())["complete"]
    # nothing else was written: no Lightning .ckpt pickles, no scvi_log/
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "plain.npz", "resumed.npz"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_run_killed_after_factors_were_pruned_resumes_bit_for_bit(tmp_path):
    ckdir = tmp_path / "ckpt"
    ref = _run("plain", "", tmp_path / "plain.npz", 30, 1, "planted")
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = _run("kill", ckdir, tmp_path / "never.npz", 30, 1, "planted")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    crashed = pm.POEMS.load(ckdir, planted_mdata())
    assert crashed.module.n_factors < 8  # factors had been pruned when the run died
    resumed = _run("resume", ckdir, tmp_path / "resumed.npz", 30, 1, "planted")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = np.load(tmp_path / "plain.npz"), np.load(tmp_path / "resumed.npz")
    assert a.files == b.files and "factor_kept" in a.files
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _checkpointed(tmp_path, max_epochs):
    """The toy cohort and a model trained with checkpoints into ``tmp_path / "ckpt"``."""
    mdata = toy_mdata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **MODEL)
    ckdir = tmp_path / "ckpt"
    train = {**TRAIN, "max_epochs": max_epochs}
    model.train(**train, checkpoint_dir=ckdir, checkpoint_every=2, enable_progress_bar=False)
    return mdata, model, ckdir


def test_a_checkpoint_loads_as_a_model_and_guards_its_arguments(tmp_path):
    mdata, model, ckdir = _checkpointed(tmp_path, 6)
    loaded = pm.POEMS.load(ckdir, mdata)  # the final model, in the format of save()
    np.testing.assert_array_equal(loaded.get_latent_representation(), model.get_latent_representation())
    # resuming a finished run gives its final model back without training
    again = pm.POEMS(mdata, **MODEL)
    again.train(**{**TRAIN, "max_epochs": 6}, checkpoint_dir=ckdir, resume=True, enable_progress_bar=False)
    np.testing.assert_array_equal(again.get_latent_representation(), model.get_latent_representation())
    with pytest.raises(ValueError, match=r"other arguments \(lr: 0.005 then, 0.001 now\)"):
        pm.POEMS(mdata, **MODEL).train(**{**TRAIN, "max_epochs": 6}, lr=1e-3, checkpoint_dir=ckdir, resume=True)
    with pytest.raises(ValueError, match="written by a model with other arguments"):
        pm.POEMS(mdata, n_latent=2).train(**{**TRAIN, "max_epochs": 6}, checkpoint_dir=ckdir, resume=True)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint_dir"):
        model.train(max_epochs=2, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive number of epochs, got 0"):
        model.train(max_epochs=2, checkpoint_dir=ckdir, checkpoint_every=0)
    with pytest.raises(ValueError, match="already holds a checkpoint. Pass resume=True"):
        pm.POEMS(mdata, **MODEL).train(max_epochs=2, checkpoint_dir=ckdir)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"holds other files \(\['notes.txt'\]…\), not a poems_mu checkpoint"):
        pm.POEMS(mdata, **MODEL).train(max_epochs=2, checkpoint_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.warns(UserWarning, match="holds no checkpoint: training from the start"):
        pm.POEMS(mdata, **MODEL).train(
            max_epochs=2, checkpoint_dir=tmp_path / "empty", resume=True, enable_progress_bar=False
        )


def test_a_crafted_resume_file_is_refused_and_runs_nothing(tmp_path):
    mdata, _, ckdir = _checkpointed(tmp_path, 4)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"optimizer": Payload()}, ckdir / "poems_resume.pt")
    with warnings.catch_warnings(), pytest.raises(InvalidModelFolder, match="resume files do not read back"):
        pm.POEMS(mdata, **MODEL).train(**{**TRAIN, "max_epochs": 4}, checkpoint_dir=ckdir, resume=True)
    assert not marker.exists()
