"""Models that travel: bioimage.io packages and ONNX files, written, verified, read back.

:func:`export` is what ``cellseg export`` and the Predict dock's *Export model…* run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from napari_cellseg.errors import ConfigError

__all__ = ["FORMATS", "ONNX_TOLERANCE", "Exported", "export"]

FORMATS = {".zip": "bioimageio", ".onnx": "onnx"}
"""Output suffix -> format."""

ONNX_TOLERANCE = 1e-4
"""Largest difference in probability between the ONNX file and the network accepted."""


@dataclass(frozen=True)
class Exported:
    """A written model file and how its check went."""

    path: Path
    seconds: float
    check: str  # one line: what the verification found ("" when skipped)
    passed: bool

    def summary(self) -> str:
        """``wrote PATH (SIZE MiB) in S s`` and the check's line."""
        size = self.path.stat().st_size / 2**20
        line = f"wrote {self.path} ({size:.1f} MiB) in {self.seconds:.1f} s"
        return f"{line}; {self.check}" if self.check else line


def export(
    model: str | Path,
    output: str | Path,
    *,
    kind: str | None = None,
    overwrite: bool = False,
    authors: tuple[str, ...] = (),
    licence: str = "CC-BY-4.0",
    check: bool = True,
) -> Exported:
    """Write ``model`` as a bioimage.io package or an ONNX file (``kind``, by default from
    the suffix), then verify it: bioimage.io's ``test_model``, or onnxruntime against
    the network on a real image."""
    kind = kind or FORMATS.get(Path(output).suffix.lower())
    if kind not in FORMATS.values():
        raise ConfigError(f"'{output}': give a .zip (bioimage.io) or .onnx file name.")
    start = time.perf_counter()
    if kind == "onnx":
        from napari_cellseg.sharing.onnx import export_onnx, onnx_difference

        path = export_onnx(model, output, overwrite=overwrite)
    else:
        from napari_cellseg.sharing.bioimageio import check_package, export_package

        path = export_package(model, output, overwrite=overwrite, authors=authors, licence=licence)
    seconds = time.perf_counter() - start
    if not check:
        return Exported(path, seconds, "", True)
    if kind == "onnx":
        difference = onnx_difference(path, model)
        text = f"onnxruntime vs torch on a real image: largest difference {difference:.1e}"
        return Exported(path, seconds, text, difference <= ONNX_TOLERANCE)
    failures = check_package(path)
    text = "bioimage.io test_model: " + ("passed" if not failures else "; ".join(failures))
    return Exported(path, seconds, text, not failures)
