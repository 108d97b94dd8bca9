"""One object per task (classification, segmentation, detection) owning what differs by task:
its data, batches, loss, evaluation and metric, background-class rule, precise-BN input,
pictures and what the reduced-precision gate measures (:class:`Task`). The training loop and
the commands ask :func:`task_for` a model's task instead of comparing task names."""

from lightnets.tasks.base import TASKS, Result, Task, get_task, register_task, task_for
from lightnets.tasks.classification import (CLASSIFICATION_TASK, EvalResult, evaluate_model,
                                            save_confusion_png)
from lightnets.tasks.detection import (DETECTION_TASK, DetEvalResult, evaluate_detector,
                                       save_boxes_png)
from lightnets.tasks.segmentation import (SEGMENTATION_TASK, SegEvalResult, evaluate_segmenter,
                                          save_examples_png)

__all__ = ["CLASSIFICATION_TASK", "DETECTION_TASK", "SEGMENTATION_TASK", "TASKS", "DetEvalResult",
           "EvalResult", "Result", "SegEvalResult", "Task", "evaluate_detector", "evaluate_model",
           "evaluate_segmenter", "get_task", "register_task", "save_boxes_png",
           "save_confusion_png", "save_examples_png", "task_for"]
