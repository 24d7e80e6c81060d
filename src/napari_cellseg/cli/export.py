"""``cellseg export``: a model as a bioimage.io package or an ONNX file, verified.

    cellseg export --config models/nuclei.yaml --output nuclei.zip
    cellseg export --config nuclei --format onnx --output nuclei.onnx

A bioimage.io package (spec 0.5: deepImageJ, QuPath, ilastik, the napari bioimage.io
plugins, and this plugin's ``--config nuclei.zip``) is checked with bioimage.io's own
``test_model``; an ONNX file is run with onnxruntime and compared with the network.
"""

from __future__ import annotations

import argparse
import sys
import time

from napari_cellseg.cli.common import report_errors
from napari_cellseg.errors import CellsegError

__all__ = ["main"]

FORMATS = {".zip": "bioimageio", ".onnx": "onnx"}
ONNX_TOLERANCE = 1e-4
"""Largest difference in probability between the ONNX file and the network accepted."""


def make_parser(prog: str = "cellseg export") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Export a model as a bioimage.io model package (.zip) or an ONNX file, "
        "and verify it.",
    )
    parser.add_argument(
        "--config", required=True, help="the model: its .yaml, its .pt or a built-in name"
    )
    parser.add_argument("--output", required=True, help="the file to write (.zip or .onnx)")
    parser.add_argument(
        "--format",
        choices=sorted(set(FORMATS.values())),
        help="bioimageio or onnx (default: from the output's suffix)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument(
        "--author",
        action="append",
        default=[],
        help="an author of the model (repeat for several; default: your login name)",
    )
    parser.add_argument(
        "--license", default="CC-BY-4.0", help="SPDX licence of the weights (CC-BY-4.0)"
    )
    parser.add_argument(
        "--no_check", action="store_true", help="skip the verification after writing"
    )
    return parser


@report_errors
def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    suffix = "." + args.output.rsplit(".", 1)[-1].lower() if "." in args.output else ""
    kind = args.format or FORMATS.get(suffix)
    if kind is None:
        raise CellsegError(
            f"'{args.output}': give a .zip (bioimage.io) or .onnx file, or --format."
        )
    start = time.perf_counter()
    if kind == "onnx":
        from napari_cellseg.sharing.onnx import export_onnx, onnx_difference

        path = export_onnx(args.config, args.output, overwrite=args.overwrite)
    else:
        from napari_cellseg.sharing.bioimageio import check_package, export_package

        path = export_package(
            args.config,
            args.output,
            overwrite=args.overwrite,
            authors=tuple(args.author),
            licence=args.license,
        )
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB) in {time.perf_counter() - start:.1f} s")
    if args.no_check:
        return 0
    if kind == "onnx":
        difference = onnx_difference(path, args.config)
        print(f"onnxruntime vs torch on a real image: largest difference {difference:.2e}")
        failed = difference > ONNX_TOLERANCE
    else:
        failures = check_package(path)
        print("bioimage.io test_model: " + ("passed" if not failures else "failed"))
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        failed = bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
