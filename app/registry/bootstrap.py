"""The default model for a new installation: built and registered by start-up and CLI code, never in a request.

Training takes seconds to minutes, so it must happen before the server binds (`avvik serve`, `avvik model
ensure`, the Docker image's build step), not inside the first delivery. Request code reaches models only
through `ActiveModelCache`, which loads registered versions and cannot train (a test checks the imports).
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session

from app.registry import service as registry
from classifier import TrainedModel, ensure_default_model

_models: dict[Path, TrainedModel] = {}
_lock = threading.Lock()


def default_model(directory: str | Path) -> TrainedModel:
    """The model in a directory, loaded once per process (trained from the corpus if the directory is empty)."""
    path = Path(directory).resolve()
    with _lock:
        if path not in _models:
            _models[path] = ensure_default_model(path)
        return _models[path]


def ensure_active_model(session: Session, directory: str | Path, by: str) -> tuple[str, bool]:
    """The active version and whether this call made it active: on a database without an active model, the
    default model (trained from the committed corpus if `directory` holds none) is registered and activated."""
    version = registry.active_version(session)
    if version is not None:
        return version, False
    model = default_model(directory)
    registry.register(session, model, source="corpus")
    return registry.activate_if_none(session, model.version, by), True
