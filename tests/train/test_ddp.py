"""Two-process data-parallel training on CPU (Lightning DDP, gloo backend) through ``model.train(strategy=...)``.

The test runs ``tests/_scripts/ddp_run.py`` in a subprocess: with ``strategy="ddp"`` Lightning launches the second
process by re-running the script, which a pytest process cannot do for itself. Each rank saves what it holds at the
end of training; the test checks that the ranks trained on disjoint halves of every epoch and still hold the same W
and, from their own E-steps, the same p* and θ.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "_scripts" / "ddp_run.py"
sys.path.insert(0, str(SCRIPT.parent))
from ddp_run import BATCH, EPOCHS, N_SAMPLES  # noqa: E402


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_process_ddp_keeps_the_e_step_identical_across_ranks(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "ddp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    main = torch.load(tmp_path / "main.pt")
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)

    # data parallel: in an epoch each rank trains on its own half of the training samples
    seen0, seen1 = (set(r["first_epoch_samples"]) for r in ranks)
    assert seen0 and seen1 and not seen0 & seen1
    n_train = math.ceil(0.8 * N_SAMPLES)  # scvi's split of the default train_size
    assert len(seen0 | seen1) >= n_train - 1  # the distributed sampler may drop one sample to even the halves
    steps_per_epoch = -(-len(seen0) // BATCH)
    assert ranks[0]["steps"] == ranks[1]["steps"] == EPOCHS * steps_per_epoch

    # after the gradient all-reduce both ranks hold the same W, so their own E-steps give the same p* and θ
    for v in range(2):
        torch.testing.assert_close(ranks[0]["W"][v], ranks[1]["W"][v], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["p_star"][v], ranks[1]["p_star"][v], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["theta"][v], ranks[1]["theta"][v], rtol=0, atol=0)
        assert not torch.allclose(ranks[0]["p_star"][v], torch.full_like(ranks[0]["p_star"][v], 0.5))  # E-step ran
    # the model returned to the caller holds the trained weights, its factors put in the order of the variance they
    # explain when training ended: the same columns, permuted
    w_rank, w_main = torch.cat(ranks[0]["W"]), torch.cat(main["W"])
    free = list(range(w_rank.shape[1]))
    for j in range(w_main.shape[1]):
        k = next(k for k in free if torch.equal(w_main[:, j], w_rank[:, k]))
        free.remove(k)
