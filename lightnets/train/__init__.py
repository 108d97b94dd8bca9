"""Training, evaluation and prediction.

``train(TrainConfig(...))`` runs the loop of :mod:`lightnets.train.loop`; ``evaluate`` and
``predict`` work from a checkpoint, which records the model, its weights and its preprocessing.
"""

from lightnets.train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from lightnets.train.config import TrainConfig
from lightnets.train.evaluate import EvalResult, evaluate, evaluate_model, save_confusion_png
from lightnets.train.loop import NonFiniteLossError, TrainResult, train
from lightnets.train.predict import Prediction, predict

__all__ = ["EvalResult", "NonFiniteLossError", "Prediction", "TrainConfig", "TrainResult",
           "evaluate", "evaluate_model", "load_checkpoint", "model_from_checkpoint", "predict",
           "save_checkpoint", "save_confusion_png", "train"]
