"""Training and evaluation.

``train(TrainConfig(...))`` runs the loop of :mod:`lightnets.train.loop`; ``evaluate`` scores a
checkpoint (:mod:`lightnets.checkpoint`), which records the model, its weights and its
preprocessing. What differs by task the model's task answers (:mod:`lightnets.tasks`).
Prediction runs deployed models and lives in :mod:`lightnets.export.predict`.
"""

from lightnets.train.config import TrainConfig
from lightnets.train.evaluate import (EvalResult, Evaluable, evaluate, evaluate_model,
                                      open_checkpoint, save_confusion_png)
from lightnets.train.loop import NonFiniteLossError, TrainResult, train, train_epochs

__all__ = ["EvalResult", "Evaluable", "NonFiniteLossError", "TrainConfig", "TrainResult",
           "evaluate", "evaluate_model", "open_checkpoint", "save_confusion_png", "train",
           "train_epochs"]
