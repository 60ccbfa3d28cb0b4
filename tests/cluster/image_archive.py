"""Build a one-layer container image archive (docker-archive format) without any registry or
image builder: used for the test cluster's sandbox (pause) image."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def single_binary_image(binary: Path, tag: str, path: str) -> bytes:
    """A docker-archive with ``binary`` at ``path`` as the image's entrypoint, tagged ``tag``."""
    layer = _tar({path.lstrip("/"): (Path(binary).read_bytes(), 0o755)})
    layer_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": [path], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
            "history": [{"created_by": "llmstep test cluster: the source package's build/pause"}],
        }
    ).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"{config_id}.json", "RepoTags": [tag], "Layers": [f"{layer_id}/layer.tar"]}]
    ).encode()
    return _tar(
        {
            f"{layer_id}/layer.tar": (layer, 0o644),
            f"{config_id}.json": (config, 0o644),
            "manifest.json": (manifest, 0o644),
        }
    )
