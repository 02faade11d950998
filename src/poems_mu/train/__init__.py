"""Training of the POEMS module: the training plan, its guard, per-epoch metrics and resumable checkpoints."""

from ._checkpoint import TrainingCheckpoint
from ._epoch_metrics import EpochMetrics
from ._guard import NonFiniteLossError, TrainingGuard
from ._training_plan import POEMSTrainingPlan

__all__ = ["EpochMetrics", "NonFiniteLossError", "POEMSTrainingPlan", "TrainingCheckpoint", "TrainingGuard"]
