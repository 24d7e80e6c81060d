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

from napari_cellseg.cli.common import report_errors
from napari_cellseg.sharing import FORMATS, export

__all__ = ["main"]


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
    exported = export(
        args.config,
        args.output,
        kind=args.format,
        overwrite=args.overwrite,
        authors=tuple(args.author),
        licence=args.license,
        check=not args.no_check,
    )
    print(exported.summary())
    return 0 if exported.passed else 1


if __name__ == "__main__":
    sys.exit(main())
