"""The default model's predictions on the corpus, the real-derived track and the tests' edge cases are pinned."""

from __future__ import annotations

from classifier import TrainedModel
from tests.classifier.fingerprint import fingerprint

# Update (with `python -m tests.classifier.fingerprint --out FILE`) only when a change is meant to alter
# predictions: the corpus, the features or training, or the locked numpy/scipy/scikit-learn versions.
GOLDEN = {
    "corpus": "d85642a95e6d3bf103f0639770c334fb0b54661e6c278469d70bfbe6e7f908af",
    "track": "2e71a4fed504687453ec652e2a58d7762b317cb66913c7a6a3da069b5d766ffc",
    "edge": "ba2f6083e9e8964d8c3e7d0e0caf5900219495e7cdb064e7e4f8466e4b8c94cd",
}


def test_predictions_are_byte_identical_to_the_golden_digests(model: TrainedModel) -> None:
    _, digests = fingerprint(model)
    assert {name: digests[name] for name in GOLDEN} == GOLDEN
