"""Settings of each job: one dataclass per job, the single source of every default.

The command line flags, the model's ``.yaml`` file and the napari widget fields are
all built from these dataclasses (:mod:`napari_cellseg.config_io`), so a default is
written exactly once, here; every value is checked when a dataclass is made.
Field metadata holds the help text (``help``), the allowed values (``choices``) and
whether the widget shows the field in its "advanced" section (``advanced``).
"""

from __future__ import annotations

from dataclasses import dataclass

from napari_cellseg.config_fields import setting, validate
from napari_cellseg.errors import ConfigError
from napari_cellseg.segmentation.settings import SegmentationSettings

__all__ = ["CPU_NETWORK", "MODEL_SETTINGS", "TrainConfig", "PredictConfig", "TuneConfig"]


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as ``<model stem>.yaml`` next to the weights.

    The first block holds the seed tool's keys with their meaning unchanged; the rest
    are this tool's additions.  See each field's ``help`` metadata (shown by
    ``cellseg train --help``) for its meaning.
    """

    # --- the seed's keys -------------------------------------------------------------
    architecture: str = setting("unet", "network architecture", choices=("dcan", "unet"))
    epochs: int = setting(100, "number of epochs", minimum=1)
    batch: int = setting(4, "batch size (per process when run under torchrun)", minimum=1)
    augments: int = setting(
        2,
        "number of augmented copies of each training image per epoch (plus the original)",
        minimum=0,
    )
    trim_method: str = setting(
        "resize",
        "how images are brought to im_dim x im_dim",
        choices=("resize", "padding", "reflect"),
    )
    train_data: str = setting(
        "", "training data directory (images/ + labels/); join several with '+'"
    )
    val_data: str = setting(
        "",
        "validation data directory; empty = hold out val_fraction of the training data",
    )
    model: str = setting(
        "", "output path of the model weights file (.pt); a .yaml is written beside it"
    )
    init_model: str = setting(
        "",
        "fine-tune a trained model: start from the weights of this model .yaml (or .pt, or "
        "'nuclei': the built-in model) instead of random ones; empty = train from scratch",
    )
    channels: int = setting(
        1,
        "input channels: neighbouring slices of a stack as context (U-Net only)",
        advanced=True,
        minimum=1,
    )
    lr: float = setting(1e-3, "learning rate", above=0)
    im_dim: int = setting(256, "network input size in pixels", advanced=True, minimum=8)
    bnd_weight: float = setting(0.5, "weight of the boundaries loss", advanced=True, minimum=0)
    obj_weight: float = setting(0.5, "weight of the objects loss", advanced=True, minimum=0)
    dropout: float = setting(0.0, "dropout rate", advanced=True, minimum=0, below=1)
    dcan_final_act: str = setting(
        "tanh", "final activation of DCAN", choices=("sigmoid", "tanh"), advanced=True
    )
    tb_dir: str = setting(
        "", "TensorBoard log directory; empty = <model dir>/tensorboard/<model stem>", advanced=True
    )
    csv_log: str = setting("", "CSV training log; empty = <model stem>-log.csv", advanced=True)
    seed: int = setting(48, "seed of all randomness", advanced=True, minimum=0)
    # --- data and targets ------------------------------------------------------------
    val_fraction: float = setting(
        0.2,
        "share of the training images held out for validation when val_data is empty",
        advanced=True,
        minimum=0,
        below=1,
    )
    blob_label: int | None = setting(
        1,
        "label value of blobs (ignored by the loss); 'none' = every non-zero value is an object",
        advanced=True,
        minimum=1,
    )
    reviewed_only: bool = setting(
        True,
        "where a label image has a review record (labels/<name>.review.csv, saved by the "
        "Review dock) or a labels layer a review, train on the reviewed objects only: the "
        "others are ignored, as blobs",
        advanced=True,
    )
    remove_blobs: bool = setting(
        False, "blank blob regions in image and labels, as the seed did", advanced=True
    )
    object_diameter: float = setting(
        0.0,
        "rescale every image so its median object diameter becomes this many pixels "
        "(measured on the labels in training; given or estimated at prediction); "
        "0 = images as they are",
        advanced=True,
        minimum=0,
    )
    boundary_thickness: int = setting(2, "boundary width in pixels", advanced=True, minimum=1)
    touching_boundaries: bool = setting(
        False, "mark only boundaries where objects touch each other", advanced=True
    )
    enable_elastic: bool = setting(
        False, "add elastic deformation to the augmentation", advanced=True
    )
    gamma_augment: bool = setting(
        False,
        "add a random gamma (0.6-1.6) of the intensities to the augmentation",
        advanced=True,
    )
    # --- networks ----------------------------------------------------------------------
    unet_levels: int = setting(
        4, "U-Net depth (number of down-sampling steps)", advanced=True, minimum=1
    )
    start_filters: int = setting(
        64, "filters of the first level (both networks)", advanced=True, minimum=1
    )
    unet_bnd_class_weight: float = setting(
        5.0, "cross-entropy weight of the boundary class (U-Net)", advanced=True, minimum=0
    )
    separation_weight: float = setting(
        0.0,
        "extra loss weight of the pixels within 3 px of two different objects (where "
        "touching nuclei must be told apart; the U-Net paper's weight map); 0 = none "
        "(10 and 20 did not help on DSB2018 in 30 CPU minutes)",
        advanced=True,
        minimum=0,
    )
    # --- optimisation ------------------------------------------------------------------
    lr_schedule: str = setting(
        "plateau",
        "plateau: lr / 10 after lr_patience epochs without val loss gain; "
        "cosine: lr down to lr / 100 over the epochs (or over max_minutes if that ends "
        "training first)",
        choices=("plateau", "cosine"),
        advanced=True,
    )
    lr_patience: int = setting(
        8, "epochs without val loss gain before lr is cut by 10", advanced=True, minimum=0
    )
    early_stop_patience: int = setting(
        15,
        "epochs without a gain of the val loss (training loss without validation data) "
        "before training stops",
        advanced=True,
        minimum=1,
    )
    early_stop_min_delta: float = setting(
        1e-4, "smallest loss gain over the best so far that counts", advanced=True, minimum=0
    )
    max_minutes: float = setting(
        0.0,
        "end training after the epoch that passes this many minutes of training (resumed "
        "runs count their earlier minutes); 0 = no limit",
        minimum=0,
    )
    # --- machine -----------------------------------------------------------------------
    device: str = setting(
        "auto", "auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:1, mps", advanced=True
    )
    num_workers: int = setting(
        -1, "DataLoader worker processes; -1 = choose from the CPU count", advanced=True, minimum=-1
    )
    mixed_precision: bool = setting(
        True,
        "compute in bfloat16 where the hardware does so natively (CPUs with AVX512-BF16 or "
        "AMX, recent CUDA GPUs; weights stay float32): about 1.7x faster training there",
        advanced=True,
    )
    tb_samples: int = setting(
        5, "sample predictions shown in TensorBoard each epoch", advanced=True, minimum=0
    )
    resume: bool = setting(
        False, "continue from the checkpoint at 'model' if present", advanced=True
    )
    overwrite: bool = setting(
        False,
        "replace the files of an earlier run at 'model' (without it they are kept and "
        "training refuses to start)",
        advanced=True,
    )
    sync_bn: bool = setting(
        False,
        "synchronise batch norm statistics across the processes of a torchrun run (CUDA only)",
        advanced=True,
    )
    world_size: int = setting(
        1,
        "number of training processes (recorded in the model yaml; set by torchrun)",
        advanced=True,
        minimum=1,
    )
    # --- post-processing (tuned after training, used by prediction) ----------------------
    # defaults: near the values tuned for U-Nets on DSB2018 (benchmarks/quality.py)
    obj_threshold: float = setting(
        0.7, "object probability above which a pixel is foreground", advanced=True
    )
    bnd_threshold: float = setting(
        0.3, "boundary probability that separates touching objects", advanced=True
    )
    split_depth: float = setting(
        0.75,
        "how far objects minus boundaries must dip between two touching objects to keep "
        "them apart (0: never merge seeds)",
        advanced=True,
    )
    min_size: int = setting(20, "smallest object kept, in pixels", advanced=True)
    small_object_prob: float = setting(
        1.0,
        "keep an object under min_size all the same when its highest object probability "
        "is above this: a small nucleus the network is sure of (1: never)",
        advanced=True,
    )
    tune_postprocess: bool = setting(
        True, "tune the post-processing thresholds on val_data after training", advanced=True
    )
    args_load_path: str = setting(
        "", "read settings from this .yaml (or 'nuclei'); flags given override it"
    )

    def __post_init__(self) -> None:
        validate(self)
        SegmentationSettings.of(self)  # checks the segmentation settings' ranges
        if self.architecture == "dcan" and self.channels > 1:
            raise ConfigError(
                f"Setting 'channels' is {self.channels} but DCAN takes single-channel input; "
                "use architecture 'unet' for multi-channel input or set channels to 1."
            )
        if self.object_diameter and self.trim_method == "resize":
            raise ConfigError(
                "Settings 'object_diameter' and trim_method 'resize' both rescale the images; "
                "use trim_method 'reflect' or 'padding' with object_diameter."
            )


CPU_NETWORK = {"architecture": "unet", "unet_levels": 4, "start_filters": 16, "im_dim": 128}
"""A small U-Net (16 filters, 4 levels, 128 x 128 inputs) that trains in minutes on a CPU.

The demo, the benchmarks and the screenshots start from it; on a CPU it is the
network to try first (``--unet_levels 4 --start_filters 16 --im_dim 128``).  In 30 CPU
minutes on DSB2018 it scored better with 4 levels than with 3 or 5 (mean AP 0.603 vs
0.592 and 0.576, ``benchmarks/quality.py``)."""

MODEL_SETTINGS = (
    "architecture",
    "channels",
    "unet_levels",
    "start_filters",
    "dcan_final_act",
    "im_dim",
    "trim_method",
    "object_diameter",
    "blob_label",
    "boundary_thickness",
    "touching_boundaries",
)
"""The network and how it sees objects: what fine-tuning takes over from its init model."""


@dataclass
class PredictConfig:
    """Settings of a prediction run (the model's own settings come from its yaml)."""

    config: str = setting("", "model .yaml written by training, or a built-in model: nuclei")
    test_data: str = setting(
        "",
        "directory with images/ (and optionally labels/) to predict on; also a folder of "
        "images or one image file",
    )
    output: str = setting(
        "",
        "directory for the predicted maps and labels; empty = nothing saved.  A name ending "
        "in .zarr predicts one large image (TIFF or OME-Zarr in test_data) block by block "
        "into a new OME-Zarr: maps, and labels under labels/instances",
    )
    channel: int = setting(
        0,
        "multichannel TIFFs (Fiji hyperstacks, OME-TIFF): the channel that shows the objects, "
        "from 1 (--measure measures the others too); 0 = the images have one channel",
        minimum=0,
    )
    plot: bool = setting(False, "write PNG figures of the predictions next to the outputs")
    measure: bool = setting(
        False,
        "write <name>_measurements.csv next to the outputs: each object's label, area, "
        "centroid, mean and integrated intensity, equivalent diameter, axis lengths and "
        "eccentricity",
    )
    rois: bool = setting(
        False,
        "write <name>_rois.zip next to the outputs: the objects' outlines as an ImageJ ROI "
        "set for Fiji's ROI Manager",
    )
    pixel_size: float = setting(
        0.0,
        "side of a pixel in micrometres, for measurements in micrometres too; 0 = the "
        "calibration a Fiji/ImageJ or OME TIFF holds (none: pixels only)",
        minimum=0,
    )
    stitch_threshold: float = setting(
        0.0,
        "z-stacks: objects of neighbouring slices become one 3D object when they overlap by "
        "this fraction of the smaller one (0.5 is a good start); 0 = every slice on its own "
        "(time series, pages of separate fields)",
        minimum=0,
        maximum=1,
    )
    z_spacing: float = setting(
        0.0,
        "distance between the slices of a z-stack in micrometres, for volumes in cubic "
        "micrometres; 0 = the spacing a Fiji/ImageJ or OME TIFF records",
        minimum=0,
    )
    architecture: str = setting("", "ignored: read from the model yaml (kept for seed parity)")
    channels: int = setting(
        0, "ignored: read from the model yaml (kept for seed parity)", minimum=0
    )
    tile_size: int = setting(
        256,
        "side of the tiles a large image is predicted in (network pixels; at least the "
        "model's im_dim): larger tiles predict fewer pixels twice",
        advanced=True,
        minimum=1,
    )
    tile_overlap: int = setting(
        -1,
        "overlap of neighbouring tiles in pixels; -1 = a quarter of the model's im_dim",
        advanced=True,
        minimum=-1,
    )
    tile_batch: int = setting(
        2, "tiles predicted at once (bounds memory)", advanced=True, minimum=1
    )
    tta: bool = setting(
        False,
        "test-time augmentation: average the predictions of the 8 flips and rotations of "
        "each tile (8 x slower); measured (the Predict dock, --measure), each object's "
        "agreement across the 8 predicted alone joins its confidence (16 x slower)",
        advanced=True,
    )
    diameter: float = setting(
        0.0,
        "median object diameter in the images in pixels, for models trained with "
        "object_diameter; 0 = estimate it for every image",
        minimum=0,
    )
    device: str = setting("auto", "auto (CUDA, then MPS, else CPU), cpu, cuda, mps", advanced=True)
    block_size: int = setting(
        2048,
        "--output OUT.zarr: side of the blocks a large image is predicted in (pixels; each "
        "is read with a halo of three object diameters around it)",
        advanced=True,
        minimum=128,
    )
    scheduler: str = setting(
        "",
        "address of a dask.distributed scheduler (tcp://host:8786) whose workers predict "
        "the blocks of --output OUT.zarr, or the images of a folder (one task each); "
        "empty = this process, every core on each block or image",
        advanced=True,
    )
    overwrite: bool = setting(
        False,
        "replace the results of an earlier run in 'output' (without it they are kept and "
        "prediction refuses to start)",
        advanced=True,
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class TuneConfig:
    """Settings of a hyper-parameter search (training settings come from TrainConfig).

    ``trials`` counts the trials of every worker that joins the study, so running the
    same command again resumes an interrupted study and runs only the missing trials.
    The score of a trial is its best val loss (tune_lr, tune_batch) or its best mean of
    the val objects and boundaries IoU (tune_all, whose loss weights change the loss).
    """

    mode: str = setting(
        "tune_lr",
        "what to search: tune_lr (learning rate), tune_batch (batch size), tune_all "
        "(learning rate, batch size, dropout and loss weights together)",
        choices=("tune_lr", "tune_batch", "tune_all"),
    )
    trials: int = setting(
        20,
        "trials wanted in the study, all workers together; a resumed study runs only the "
        "missing ones (tune_batch: at most one per batch size)",
        minimum=1,
    )
    output: str = setting(
        "tuning", "directory for the study, the trials' models, trials.csv, trials.png, best.yaml"
    )
    storage: str = setting(
        "",
        "study storage shared by workers: a database URL (sqlite:///path.db, "
        "postgresql://user@host/db) or the path of a journal file (e.g. in a network folder); "
        "empty = the SQLite file study.db in output",
    )
    study: str = setting("", "study name; empty = the mode")
    keep_all: bool = setting(False, "keep every trial's model files, not only the best trial's")
    lr_min: float = setting(1e-5, "smallest learning rate tried (tune_lr, tune_all)", above=0)
    lr_max: float = setting(1e-1, "largest learning rate tried (tune_lr, tune_all)", above=0)
    batch_min: int = setting(
        2, "smallest batch size tried (tune_batch, tune_all); powers of two up", minimum=1
    )
    batch_max: int = setting(
        32,
        "largest batch size tried (tune_batch, tune_all); once a size runs out of memory, "
        "larger ones are not tried",
        minimum=1,
    )
    prune: bool = setting(
        True,
        "stop a trial whose val score after an epoch is worse than the median of the "
        "finished trials at that epoch",
    )
    prune_startup_trials: int = setting(
        4, "trials that finish before pruning starts", advanced=True, minimum=0
    )
    prune_warmup_epochs: int = setting(
        2, "epochs every trial runs before it may be pruned", advanced=True, minimum=0
    )

    def __post_init__(self) -> None:
        validate(self)
        if not 0 < self.lr_min < self.lr_max:
            raise ConfigError(
                f"Settings lr_min ({self.lr_min:g}) and lr_max ({self.lr_max:g}) must "
                "satisfy 0 < lr_min < lr_max."
            )
