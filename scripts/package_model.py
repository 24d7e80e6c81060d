"""Make a trained model a built-in one: copy it into ``src/napari_cellseg/pretrained``.

    python scripts/package_model.py models/quality.yaml nuclei-dsb2018-fluo

Writes ``<name>.yaml`` (every setting and the record; the weights named relative to the
yaml, data folders shortened to their last two parts, machine-only paths emptied) and
``<name>.pt`` (the weights as they are: stored in bfloat16 they would take half the
space, but moved the DSB2018 scores by up to 0.0025).  Register the name in
``BUILTIN_MODELS``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

from napari_cellseg.config_io import read_yaml_dict
from napari_cellseg.model_file import read_model

FOLDER = Path(__file__).resolve().parents[1] / "src" / "napari_cellseg" / "pretrained"


def short(path: str) -> str:
    """``/any/where/dsb2018-fluo/train`` -> ``dsb2018-fluo/train``."""
    return "/".join(Path(path).parts[-2:]) if path else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("yaml", type=Path, help="the trained model's .yaml")
    parser.add_argument("name", help="file name of the built-in model, without suffix")
    args = parser.parse_args()
    data = read_yaml_dict(args.yaml)
    weights = read_model(args.yaml).weights
    data.update(
        model=f"{args.name}.pt",
        tb_dir="",
        csv_log="",
        args_load_path="",
        train_data=short(data["train_data"]),
        val_data=short(data["val_data"]),
    )
    for key in ("postprocess", "postprocess_tta"):
        scored = data.get("record", {}).get(key)
        if scored:
            scored["data"] = short(scored["data"])
    shutil.copyfile(weights, FOLDER / f"{args.name}.pt")
    (FOLDER / f"{args.name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"wrote {FOLDER / args.name}.yaml and .pt")


if __name__ == "__main__":
    main()
