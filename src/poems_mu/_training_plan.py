"""Training plan: scvi's ELBO training, plus the spike-and-slab E-step after every optimizer step."""

from __future__ import annotations

from scvi.train import TrainingPlan


class POEMSTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` that runs :meth:`POEMSModule.e_step` after each optimizer step.

    Under DDP every process holds the same W after the gradient all-reduce, so every process computes the same
    p* and θ: no extra communication is needed.
    """

    def on_train_batch_end(self, outputs, batch, batch_idx):
        """E-step: update p* and θ from the freshly updated W."""
        self.module.e_step()
