"""Atomic output writing and provenance: nothing half-written ever looks complete."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or "".join(final.suffixes) + ".tmp",
                               dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs are shared files
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_tsv(path: str | os.PathLike, frame, header: str = "", index: bool = False) -> None:
    """Write a DataFrame as TSV, optionally preceded by a comment header (MultiQC custom content)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(header)
            frame.to_csv(fh, sep="\t", index=index, float_format="%.6g")


def write_h5ad(path: str | os.PathLike, adata) -> None:
    with atomic_path(path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Checksum of a file, or of every file below a directory (10x matrix folders)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of the packages that shape results."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    # scdeal's own version from the code that runs: under -profile conda it is imported from the checkout, not installed
    versions = {"python": sys.version.split()[0], "platform": platform.platform(), "scdeal": __version__}
    for pkg in ("torch", "numpy", "scipy", "pandas", "scikit-learn", "anndata", "scanpy",
                "leidenalg", "igraph", "captum", "imbalanced-learn"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return versions


def provenance(step: str, params: dict[str, Any], inputs: dict[str, str | os.PathLike] | None = None) -> dict:
    """What made an output: step, parameters, input checksums, software versions and time."""
    return {
        "step": step,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "inputs": {k: {"path": str(v), "sha256": file_sha256(v)} for k, v in (inputs or {}).items()},
        "versions": software_versions(),
    }


VERSIONED = ("python", "scdeal", "torch", "scanpy", "anndata", "scikit-learn", "captum", "leidenalg")


def versions_yaml(process: str) -> str:
    """nf-core versions.yml of one process: its name (Nextflow's task.process, as given) and the versions
    of the packages that shape its results."""
    versions = software_versions()
    lines = [f'"{process}":'] + [f'    {key}: "{versions[key]}"' for key in VERSIONED if key in versions]
    return "\n".join(lines) + "\n"
