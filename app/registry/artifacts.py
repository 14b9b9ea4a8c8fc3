"""Model artifacts as the database keeps them: an artifact directory zipped into bytes, and unzipped and
loaded again (checked against its stored hash) once per process."""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import zipfile
from pathlib import Path

from app.errors import Conflict
from app.registry.models import ModelVersion
from classifier import TrainedModel, load, save

_cache: dict[str, TrainedModel] = {}
_lock = threading.Lock()


def pack(model: TrainedModel) -> bytes:
    """The model's artifact directory as zip bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = save(model, Path(tmp) / "model")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(directory.iterdir()):
                if not file.name.startswith("."):  # the artifact's lock file is not part of it
                    archive.write(file, file.name)
        return buffer.getvalue()


def unpack(version: ModelVersion, cache_dir: Path) -> TrainedModel:
    """Load a registered model (checked against its stored hash), once per process."""
    with _lock:
        if version.version in _cache:
            return _cache[version.version]
        if hashlib.sha256(version.artifact).hexdigest() != version.artifact_sha256:
            raise Conflict(f"the stored artifact of {version.version} is damaged")
        cache_dir.mkdir(parents=True, exist_ok=True)
        # A directory of this process's own: every uvicorn worker unpacks at start-up, and a shared directory
        # let one worker rewrite arrays.npz while another read it (ArtifactError at start-up). load() reads
        # everything into memory, so the files are not needed afterwards.
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f"{version.version}-") as tmp:
            target = Path(tmp)
            with zipfile.ZipFile(io.BytesIO(version.artifact)) as archive:
                for name in archive.namelist():
                    if "/" in name or name.startswith("."):
                        raise Conflict(f"unexpected file {name!r} in the artifact of {version.version}")
                    (target / name).write_bytes(archive.read(name))
            _cache[version.version] = load(target)
        return _cache[version.version]
