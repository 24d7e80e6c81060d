"""``cellseg <command> ...``: one entry point for every command-line tool.

Each command is also a module of its own (``python -m napari_cellseg.train ...``), as
in the seed tool; this dispatcher only forwards the remaining arguments.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module:function, one-line description)
COMMANDS = {
    "train": ("napari_cellseg.cli.train:main", "train a DCAN or U-Net network"),
    "predict": ("napari_cellseg.cli.predict:main", "probability maps and instance labels"),
    "evaluate": (
        "napari_cellseg.cli.evaluate:main",
        "score instance labels against ground truth",
    ),
    "tune-postprocess": (
        "napari_cellseg.cli.evaluate:tune_postprocess_main",
        "tune segmentation thresholds on validation data",
    ),
    "tune": ("napari_cellseg.cli.tune:main", "search learning rate and batch size"),
    "export": ("napari_cellseg.cli.export:main", "a model as a bioimage.io package or ONNX"),
    "demo": ("napari_cellseg.cli.demo:main", "train on synthetic nuclei and segment (a minute)"),
}


def usage() -> str:
    lines = ["usage: cellseg <command> [options]   (cellseg <command> --help for its options)", ""]
    lines += [f"  {name:<18}{description}" for name, (_, description) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"cellseg: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[argv[0]]
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
