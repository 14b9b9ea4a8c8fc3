"""The active model of a server process, re-read from the database so that a promotion reaches every replica."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from sqlalchemy.orm import Session

from app.registry.artifacts import unpack
from app.registry.models import ModelVersion
from app.registry.service import active_version
from classifier import TrainedModel


class ActiveModelCache:
    """The active model for a server process: re-read from the database at most every `ttl` seconds, so
    a promotion reaches every replica within that time."""

    def __init__(self, cache_dir: Path, ttl: float = 10.0, *, freeze: bool = False) -> None:
        self.cache_dir = cache_dir
        self.ttl = ttl
        self.freeze = freeze
        self._model: TrainedModel | None = None
        self._checked = float("-inf")
        self.warned = False  # that there is no active model, once per process

    def invalidate(self) -> None:
        """Read the active version again on the next call."""
        self._checked = float("-inf")

    def get(self, session: Session) -> TrainedModel | None:
        """The active model (None while the database has none); loads a registered artifact, never trains."""
        now = time.monotonic()
        if self._model is None or now - self._checked > self.ttl:
            version = active_version(session)
            if version is not None and (self._model is None or self._model.version != version):
                row = session.get(ModelVersion, version)
                if row is not None:
                    self._model = unpack(row, self.cache_dir)
                    if self.freeze:
                        # A model lives until the next promotion: keep the collector from walking its
                        # vocabulary on every full collection (see app.main.freeze_long_lived).
                        gc.collect()
                        gc.freeze()
            self._checked = now
        return self._model
