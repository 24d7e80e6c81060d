"""Models that travel: a bioimage.io model package (spec 0.5) written and read back.

The package (a .zip) holds the network as ``pytorch_state_dict`` weights (with the
networks' source, :func:`~.networks.network_source`) and as ``torchscript``; the input
described with its percentile normalisation, the probability maps as output; test
tensors and a cover made from a real image; a README; and, under ``config`` →
``napari-cellseg``, the whole model yaml (network, segmentation settings plain and for
test-time augmentation, record), so that this plugin reads the package back as the model
it came from.  deepImageJ, QuPath, ilastik and the napari bioimage.io plugins run the
network; instances need this plugin's post-processing (or the consumer's own watershed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import yaml

from napari_cellseg.errors import ConfigError
from napari_cellseg.model_file import RECORD_KEY, TTA_SEGMENTATION_KEY, ModelFile, read_model
from napari_cellseg.models.registry import required_multiple
from napari_cellseg.sharing.networks import (
    check_output,
    example_image,
    exported_network,
    network_source,
    output_names,
    scale_range,
)

__all__ = ["CONFIG_KEY", "PACKAGES", "check_package", "export_package", "unpack_package"]

CONFIG_KEY = "napari-cellseg"
"""Key under the package's ``config`` that holds the model yaml."""

PACKAGES = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "napari-cellseg" / "packages"
)
"""Where imported packages are unpacked (one folder per package content)."""

_CITATIONS = {
    "dcan": (
        "H. Chen, X. Qi, L. Yu, P.-A. Heng: DCAN: Deep Contour-Aware Networks for Accurate "
        "Gland Segmentation. CVPR 2016.",
        "10.1109/CVPR.2016.273",
    ),
    "unet": (
        "O. Ronneberger, P. Fischer, T. Brox: U-Net: Convolutional Networks for Biomedical "
        "Image Segmentation. MICCAI 2015.",
        "10.1007/978-3-319-24574-4_28",
    ),
    "dsb2018": (
        "J. C. Caicedo et al.: Nucleus segmentation across imaging experiments: the 2018 Data "
        "Science Bowl. Nature Methods 16, 2019 (training data of the built-in model, CC0).",
        "10.1038/s41592-019-0612-7",
    ),
}


def export_package(
    model_path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    authors: tuple[str, ...] = (),
    licence: str = "CC-BY-4.0",
) -> Path:
    """Write the model ``model_path`` (yaml, .pt or built-in name) as a bioimage.io package.

    Parameters
    ----------
    output
        The package file (.zip), written atomically; an existing one only with
        ``overwrite``.
    authors
        Who made the model (default: the user's login name).
    licence
        SPDX identifier of the weights' licence.

    Raises
    ------
    ConfigError
        For a model without weights, a bad output path, or a package that
        bioimage.io's validation refuses (its message names the field).
    """
    import tempfile

    from napari_cellseg.io_utils import atomic_write

    model = read_model(model_path)
    output = check_output(output, ".zip", overwrite)
    model.weights  # noqa: B018 - a model without its weights file is refused here
    with tempfile.TemporaryDirectory(prefix="cellseg-export-") as tmp:
        try:
            descr = _describe(model, Path(tmp), list(authors) or [_login()], licence)
        except ValueError as exc:  # pydantic's ValidationError: a field bioimage.io refuses
            raise ConfigError(
                f"bioimage.io refuses the description of '{model.path}': {exc}"
            ) from None
        built = Path(tmp) / "package.zip"
        _save(descr, built)
        atomic_write(output, lambda path: path.write_bytes(built.read_bytes()))
    return output


def _describe(model: ModelFile, folder: Path, authors: list[str], licence: str):
    """The bioimage.io description of ``model``, its files written into ``folder``."""
    import torch
    from bioimageio.spec.model import v0_5 as spec

    network, name, kwargs = exported_network(model)
    raw = example_image(model)
    with torch.no_grad():
        probabilities = network(torch.from_numpy(scale_range(raw))).numpy()
    np.save(folder / "test_input.npy", raw)
    np.save(folder / "test_output.npy", probabilities)
    torch.save(network.state_dict(), folder / "weights.pt")
    torch.jit.trace(network, torch.from_numpy(scale_range(raw))).save(folder / "torchscript.pt")
    (folder / "networks.py").write_text(network_source())
    _write_cover(model, raw, probabilities, folder / "cover.png")
    (folder / "README.md").write_text(_readme(model))

    image, maps = _tensors(model, folder)
    version = torch.__version__.split("+")[0]
    weights = spec.WeightsDescr(
        pytorch_state_dict=spec.PytorchStateDictWeightsDescr(
            source=folder / "weights.pt",
            architecture=spec.ArchitectureFromFileDescr(
                source=folder / "networks.py", callable=spec.Identifier(name), kwargs=kwargs
            ),
            pytorch_version=spec.Version(version),
        ),
        torchscript=spec.TorchscriptWeightsDescr(
            source=folder / "torchscript.pt",
            pytorch_version=spec.Version(version),
            parent="pytorch_state_dict",
        ),
    )
    cite = [_citation(model.config.architecture)]
    if model.builtin:
        cite.append(_citation("dsb2018"))
    return spec.ModelDescr(
        name=_name(model),
        description=f"{_ARCHITECTURE[model.config.architecture]} for cell and nucleus "
        "segmentation, trained with napari-cellseg: object and boundary probabilities.",
        authors=[spec.Author(name=a) for a in authors],
        cite=[spec.CiteEntry(text=text, doi=spec.Doi(doi)) for text, doi in cite],
        license=spec.LicenseId(licence),
        tags=["napari-cellseg", "instance-segmentation", "2d", model.config.architecture],
        covers=[spec.FileDescr(source=folder / "cover.png")],
        documentation=spec.FileDescr(source=folder / "README.md"),
        inputs=[image],
        outputs=[maps],
        weights=weights,
        config=spec.Config(**{CONFIG_KEY: _model_content(model)}),
    )


def _tensors(model: ModelFile, folder: Path):
    """The input (with its percentile scaling) and output descriptions, of any height and
    width that are multiples of the network's pooling grid."""
    from bioimageio.spec.model import v0_5 as spec

    grid = spec.ParameterizedSize(
        min=required_multiple(model.config), step=required_multiple(model.config)
    )
    space = [spec.SpaceInputAxis(id=spec.AxisId(a), size=grid) for a in "yx"]
    channels = _channel_names(model.config.channels)
    image = spec.InputTensorDescr(
        id=spec.TensorId("image"),
        description="grayscale image; raw intensities (scaled by the preprocessing)",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=channels), *space],
        test_tensor=spec.FileDescr(source=folder / "test_input.npy"),
        data=spec.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[
            spec.ScaleRangeDescr(
                kwargs=spec.ScaleRangeKwargs(
                    axes=[spec.AxisId("y"), spec.AxisId("x")],
                    min_percentile=1.0,
                    max_percentile=99.8,
                )
            )
        ],
    )
    same_size = [
        spec.SpaceOutputAxis(
            id=spec.AxisId(a),
            size=spec.SizeReference(tensor_id=spec.TensorId("image"), axis_id=spec.AxisId(a)),
        )
        for a in "yx"
    ]
    maps = spec.OutputTensorDescr(
        id=spec.TensorId("probabilities"),
        description="probability of each pixel to be " + ", ".join(output_names(model)),
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=output_names(model)), *same_size],
        test_tensor=spec.FileDescr(source=folder / "test_output.npy"),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    return image, maps


_ARCHITECTURE = {
    "dcan": "DCAN (deep contour-aware network)",
    "unet": "U-Net with an object and a boundary class",
}


def _channel_names(channels: int) -> list[str]:
    """``intensity``, or for neighbouring slices ``z_minus1``, ``z``, ``z_plus1``, ..."""
    if channels == 1:
        return ["intensity"]
    offsets = [i - channels // 2 for i in range(channels)]
    return [f"z_{'minus' if o < 0 else 'plus'}{abs(o)}" if o else "z" for o in offsets]


def _citation(key: str) -> tuple[str, str]:
    return _CITATIONS[key]


def _name(model: ModelFile) -> str:
    import re

    stem = re.sub(r"[^A-Za-z0-9_\- ]+", "-", model.path.stem).strip("- ")
    return f"napari-cellseg {stem or 'model'}"[:128]


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container
        return "napari-cellseg user"


def _model_content(model: ModelFile) -> dict:
    """The model yaml as the package keeps it: the weights are the package's."""
    content = dataclasses.asdict(dataclasses.replace(model.config, model="weights.pt"))
    if model.tta_segmentation is not None:
        content[TTA_SEGMENTATION_KEY] = model.tta_segmentation.as_dict()
    content[RECORD_KEY] = model.record
    return content


def _write_cover(model: ModelFile, raw: np.ndarray, maps: np.ndarray, path: Path) -> None:
    """A 2 x 2 grid of the test image: image, objects / boundaries, instances."""
    import imageio.v3 as iio
    from skimage.color import label2rgb

    from napari_cellseg.segmentation.instances import instances

    objects, boundaries = maps[0, -2], maps[0, -1]
    labels = instances(objects, boundaries, **model.segmentation().as_dict())
    image = scale_range(raw)[0, model.config.channels // 2].clip(0, 1)
    gray = [np.dstack([m] * 3) for m in (image, objects, boundaries)]
    panels = [*gray, label2rgb(labels, image=image, bg_label=0, alpha=0.5)]
    cover = np.vstack([np.hstack(panels[:2]), np.hstack(panels[2:])])
    iio.imwrite(path, (cover.clip(0, 1) * 255).astype(np.uint8))


def _readme(model: ModelFile) -> str:
    cfg, record = model.config, model.record
    settings = model.segmentation()
    tta = model.tta_segmentation
    best = record.get("best") or {}
    scores = ", ".join(f"{k} {v:.3f}" for k, v in best.items() if isinstance(v, float))
    lines = [
        f"# {_name(model)}",
        "",
        f"A {_ARCHITECTURE[cfg.architecture]} trained with "
        "[napari-cellseg](https://pypi.org/project/napari-cellseg/) to segment cells or "
        "nuclei in grayscale microscopy images.",
        "",
        "## Input and output",
        "",
        f"- input: a grayscale image (batch, {cfg.channels} channel(s), y, x); height and "
        "width multiples of the network's pooling grid (see `rdf.yaml`); intensities are "
        "scaled from their 1st..99.8th percentile to 0..1 (the package's preprocessing).",
        "- output: the probability of each pixel to be " + ", ".join(output_names(model)) + ".",
    ]
    if cfg.object_diameter:
        lines.append(
            f"- the network was trained on objects about {cfg.object_diameter:g} pixels "
            "across: rescale images so that yours are about that size (napari-cellseg does "
            "it for you)."
        )
    lines += [
        "",
        "## Instances",
        "",
        "The instances come from the two maps by a seeded watershed: seeds where objects "
        "> `obj_threshold` and boundaries < `bnd_threshold`, merged when the dip between "
        "them is under `split_depth`, objects under `min_size` pixels dropped.  "
        f"This model's settings: {settings.describe()}"
        + (f"; for test-time augmented maps: {tta.describe()}" if tta else "")
        + ".  napari-cellseg reads this package and makes them for you "
        "(`cellseg predict --config this.zip`, or pick it in the Predict dock); another "
        "consumer (deepImageJ, QuPath, ilastik) shows the maps, and its own watershed "
        "makes instances from them.",
        "",
        "## Training",
        "",
        f"- data: `{cfg.train_data or 'napari layers'}`"
        + (" (DSB2018 stage 1 fluorescence images, CC0)" if model.builtin else ""),
        f"- epochs trained: {record.get('epochs_trained', 'unknown')}",
    ]
    if scores:
        lines.append(f"- best validation scores: {scores}")
    return "\n".join(lines) + "\n"


def _save(descr, path: Path) -> None:
    from bioimageio.spec import save_bioimageio_package

    save_bioimageio_package(descr, output_path=path)


def unpack_package(path: str | Path) -> Path:
    """The model yaml inside a package this plugin exported, unpacked into ``PACKAGES``.

    Unpacked once per package content; the yaml names the package's weights.

    Raises
    ------
    ConfigError
        For a file that is no zip, a zip that is no bioimage.io model, a model of another
        tool (naming its weights and what this plugin runs), or a package without weights.
    """
    from napari_cellseg.io_utils import atomic_write, atomic_write_text

    path = Path(path)
    try:
        data = path.read_bytes()
        archive = zipfile.ZipFile(io.BytesIO(data))
        rdf = yaml.safe_load(archive.read(_rdf_name(archive, path)))
    except FileNotFoundError:
        raise ConfigError(f"The model package '{path}' does not exist.") from None
    except (zipfile.BadZipFile, yaml.YAMLError, KeyError, OSError) as exc:
        raise ConfigError(
            f"'{path}' is not a readable bioimage.io model package ({exc}); export it again "
            "or download it again."
        ) from None
    content = ((rdf or {}).get("config") or {}).get(CONFIG_KEY)
    if not isinstance(content, dict):
        kinds = ", ".join(sorted((rdf or {}).get("weights") or {})) or "no weights"
        raise ConfigError(
            f"'{path}' is a bioimage.io model of another tool ('{(rdf or {}).get('name')}', "
            f"{kinds}): this plugin runs the DCAN and U-Net models it exported itself.  Open "
            "it with the bioimage.io napari plugin, deepImageJ or QuPath instead."
        )
    weights = ((rdf.get("weights") or {}).get("pytorch_state_dict") or {}).get("source")
    if not weights or weights not in archive.namelist():
        raise ConfigError(
            f"'{path}' has no pytorch_state_dict weights file; export the model again."
        )
    folder = PACKAGES / f"{path.stem}-{hashlib.sha256(data).hexdigest()[:12]}"
    target = folder / "model.yaml"
    if not target.is_file():
        atomic_write(folder / "weights.pt", lambda tmp: tmp.write_bytes(archive.read(weights)))
        text = yaml.safe_dump({**content, "model": "weights.pt"}, sort_keys=False)
        atomic_write_text(target, text)
    return target


def _rdf_name(archive: zipfile.ZipFile, path: Path) -> str:
    names = [n for n in archive.namelist() if n.endswith(("rdf.yaml", "bioimageio.yaml"))]
    if not names:
        raise KeyError(f"no rdf.yaml in '{path.name}'")
    return min(names, key=len)


def check_package(path: str | Path) -> list[str]:
    """Run bioimage.io's own ``test_model`` on a package: the checks that did not pass
    (empty when it passed), each as one line."""
    from bioimageio.core import test_model

    summary = test_model(str(path))
    return [
        f"{detail.name}: " + "; ".join(e.msg for e in detail.errors)
        for detail in summary.details
        if detail.status != "passed"
    ]
