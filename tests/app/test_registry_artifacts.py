"""A registered model's artifact unpacked by several server workers at once (each uvicorn worker loads the
active model at start-up into the same cache directory)."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path

from app.registry import artifacts
from app.registry.bootstrap import default_model
from app.registry.models import ModelVersion
from app.settings import Settings

WORKERS = 4
VERSIONS = 6


def _unpack_all(blob: bytes, digest: str, cache_dir: str, start: multiprocessing.synchronize.Barrier,
                results: multiprocessing.Queue[tuple[str, str]]) -> None:
    start.wait()
    for i in range(VERSIONS):
        row = ModelVersion(version=f"race-{i}", artifact=blob, artifact_sha256=digest)
        try:
            model = artifacts.unpack(row, Path(cache_dir))
            results.put(("ok", model.version))
        except Exception as exc:  # reported to the parent, which fails the test with it
            results.put(("failed", f"{type(exc).__name__}: {exc}"))


def test_workers_unpacking_the_same_model_at_once_all_load_it(tmp_path: Path) -> None:
    model = default_model(Settings(_env_file=None).model_dir)
    blob = artifacts.pack(model)
    digest = hashlib.sha256(blob).hexdigest()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(WORKERS)
    results: multiprocessing.Queue[tuple[str, str]] = context.Queue()
    workers = [context.Process(target=_unpack_all, args=(blob, digest, str(tmp_path), start, results))
               for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(WORKERS * VERSIONS)]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == [("ok", model.version)] * (WORKERS * VERSIONS)
    # Nothing is left behind: each worker's unpacked files were only needed while it loaded them.
    assert list(tmp_path.iterdir()) == []
