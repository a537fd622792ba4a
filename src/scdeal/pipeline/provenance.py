"""Provenance of every output: parameters, input checksums, software versions and time; and the
nf-core versions.yml of each process."""
from __future__ import annotations

import hashlib
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["VERSIONED", "file_sha256", "provenance", "software_versions", "versions_yaml"]


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

    from .. import __version__

    # scdeal's own version from the code that runs: under -profile conda it is imported from the checkout, not installed
    versions = {"python": sys.version.split()[0], "platform": platform.platform(), "scdeal": __version__}
    for pkg in ("torch", "numpy", "scipy", "pandas", "scikit-learn", "anndata", "scanpy",
                "leidenalg", "igraph", "imbalanced-learn"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return versions


def provenance(step: str, params: dict[str, Any], inputs: dict[str, str | os.PathLike] | None = None) -> dict:
    """What made an output: step, parameters, input checksums (inputs given as None were not read), software
    versions and time."""
    return {
        "step": step,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "inputs": {k: {"path": str(v), "sha256": file_sha256(v)} for k, v in (inputs or {}).items() if v is not None},
        "versions": software_versions(),
    }


VERSIONED = ("python", "scdeal", "torch", "scanpy", "anndata", "scikit-learn", "leidenalg")


def versions_yaml(process: str) -> str:
    """nf-core versions.yml of one process: its name (Nextflow's task.process, as given) and the versions
    of the packages that shape its results."""
    versions = software_versions()
    lines = [f'"{process}":'] + [f'    {key}: "{versions[key]}"' for key in VERSIONED if key in versions]
    return "\n".join(lines) + "\n"
