"""Classifier speed on one core: predict in batches of 1 and 1,000, single-report latency, load time, size.

Each figure stands beside a reference measured in the same run: a plain scikit-learn
TfidfVectorizer + LogisticRegression trained on the same texts, saved with skops.
Usage: python bench/classifier.py [--model DIR] [--json PATH]
Needs the bench extra (skops): .venv/bin/pip install -e '.[bench]'
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# This file is called classifier.py too: drop bench/ from the path so that `import classifier` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

# One core, as the issue asks; must be set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

try:
    import skops.io as sio
except ImportError:  # skops serves this benchmark's reference only, so it is not among the service's dependencies
    sys.exit("bench/classifier.py needs skops: .venv/bin/pip install -e '.[bench]'")
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402

from classifier import ensure_default_model, load, load_corpus  # noqa: E402

BATCH = 1000
SINGLES = 1000


def best_rate(run: Callable[[], Any], items: int, repeats: int = 5) -> float:
    """Items per second of the fastest of several runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return items / best


def latencies(run: Callable[[int], Any], n: int) -> list[float]:
    """Milliseconds per call of run(i), for i in range(n)."""
    out = []
    for i in range(n):
        started = time.perf_counter()
        run(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of values."""
    return float(np.quantile(np.asarray(values), q))


def directory_size(path: Path) -> int:
    """Bytes of the files in a directory (or of one file)."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def reference_model(texts: list[str], labels: list[bool]) -> Pipeline:
    """What a plain scikit-learn baseline looks like: word TF-IDF and logistic regression."""
    return make_pipeline(TfidfVectorizer(sublinear_tf=True), LogisticRegression(max_iter=1000)).fit(texts, labels)


def main() -> None:
    """Measure, print a Markdown table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: var/models/default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    model_dir = args.model or Path("var/models/default")
    ensure_default_model(model_dir) if args.model is None else load(model_dir)
    corpus = load_corpus()
    reports = [r.text for r in corpus]
    reports = (reports * (BATCH // len(reports) + 1))[:BATCH]
    texts = [f"{r.title}\n{r.description}" for r in reports]
    labels = [r.labels.samhandling_barn_unge for r in corpus]
    reference = reference_model([f"{r.title}\n{r.description}" for r in corpus], labels)

    with tempfile.TemporaryDirectory() as tmp:
        ref_path = Path(tmp) / "reference.skops"
        sio.dump(reference, ref_path)
        trusted = sio.get_untrusted_types(file=ref_path)  # our own file, written a line above
        load_ours = statistics.median(_timed(lambda: load(model_dir)) for _ in range(5))
        load_ref = statistics.median(_timed(lambda: sio.load(ref_path, trusted=trusted)) for _ in range(5))
        size_ref = directory_size(ref_path)
    size_ours = directory_size(model_dir)

    model = load(model_dir)
    model.predict(reports)  # warm the word caches, as a running service has them
    reference.predict_proba(texts)
    # A service calls gc.freeze() after start-up; without it, collections of the model's caches add noise.
    gc.collect()
    gc.freeze()

    batch_ours = best_rate(lambda: model.predict(reports), BATCH)
    batch_plain = best_rate(lambda: model.predict(reports, explain=False), BATCH)
    batch_ref = best_rate(lambda: reference.predict_proba(texts), BATCH)
    single_ours = latencies(lambda i: model.predict([reports[i % BATCH]]), SINGLES)
    single_ref = latencies(lambda i: reference.predict_proba([texts[i % BATCH]]), SINGLES)

    rows = [
        ("predict, batches of 1,000 (reports/s)", batch_ours, batch_ref),
        ("predict without explanations, batches of 1,000 (reports/s)", batch_plain, batch_ref),
        ("predict, batches of 1 (reports/s)", 1000 / statistics.mean(single_ours), 1000 / statistics.mean(single_ref)),
        ("single report latency p50 (ms)", percentile(single_ours, 0.5), percentile(single_ref, 0.5)),
        ("single report latency p99 (ms)", percentile(single_ours, 0.99), percentile(single_ref, 0.99)),
        ("load time (ms)", load_ours * 1000, load_ref * 1000),
        ("size on disk (kB)", size_ours / 1000, size_ref / 1000),
    ]
    print(f"model {model.version}; {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, one thread")
    print("| measure | classifier | reference (TF-IDF + LR) | ratio |")
    print("|---|---|---|---|")
    for name, ours, ref in rows:
        print(f"| {name} | {ours:,.1f} | {ref:,.1f} | {ours / ref:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({name: {"classifier": ours, "reference": ref} for name, ours, ref in rows},
                                        indent=2) + "\n", encoding="utf-8")


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
