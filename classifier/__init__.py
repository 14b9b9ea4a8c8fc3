"""Find collaboration deviations about children and youth in Norwegian report text (bokmål and nynorsk)."""

from classifier.artifacts import ArtifactError, ensure_default_model, load, save
from classifier.evaluate import evaluate
from classifier.explanation import Explanation
from classifier.model import Prediction, TrainedModel
from classifier.records import LabelledReport, ReportText, load_corpus
from classifier.training import train

__all__ = [
    "ArtifactError", "Explanation", "LabelledReport", "Prediction", "ReportText", "TrainedModel",
    "ensure_default_model", "evaluate", "load", "load_corpus", "save", "train",
]
