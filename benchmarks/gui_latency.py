"""How responsive napari stays while the training dock trains: Qt event-loop latency.

A precise QTimer asks to run every 10 ms on the GUI thread; how late each tick comes is
the time the GUI could not react (to a pan, a zoom, a paint stroke).  With ``--pan`` a
second timer also pans and zooms the camera, so the canvas redraws as under a user's
hand (under Xvfb that measures software OpenGL more than training).  The same probe
runs once with the viewer idle, for comparison.

Run under a display (``xvfb-run -a python benchmarks/gui_latency.py``); the last line is
JSON: p50/p99/max latency in ms while training and while idle.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from napari_cellseg.config import CPU_NETWORK

TICK_MS = 10


def probe(run, lateness: list[float]) -> list[float]:
    """Latencies (ms) of a 10 ms timer on the GUI thread during ``run(quit)``, into ``lateness``.

    ``run`` starts the work and arranges for ``quit()`` to be called when it ends; the
    Qt event loop runs in between.
    """
    from qtpy.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    clock, loop = QElapsedTimer(), QEventLoop()
    clock.start()
    last = [clock.elapsed()]

    def tick() -> None:
        now = clock.elapsed()
        lateness.append(max(0.0, now - last[0] - TICK_MS))
        last[0] = now

    timer = QTimer(timerType=Qt.TimerType.PreciseTimer, interval=TICK_MS)
    timer.timeout.connect(tick)
    timer.start()
    run(loop.quit)
    loop.exec()
    timer.stop()
    return lateness


def summary(latencies: list[float]) -> dict:
    values = np.asarray(latencies)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "max_ms": round(float(values.max()), 2),
        "ticks": int(values.size),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--images", type=int, default=4, help="training image/labels pairs")
    parser.add_argument("--size", type=int, default=256, help="side of the two training images")
    parser.add_argument("--im-dim", type=int, default=CPU_NETWORK["im_dim"])
    parser.add_argument(
        "--pan",
        action="store_true",
        help="also pan and zoom every 50 ms (adds the canvas' redraw time, large with software GL)",
    )
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtCore import QTimer

    from napari_cellseg.data.synthetic import make_nuclei
    from napari_cellseg.widgets._worker import gui_threads

    viewer = napari.Viewer()
    for seed in range(args.images):
        image, labels = make_nuclei((args.size, args.size), blobs=1, seed=seed)
        viewer.add_image(image, name=f"image {seed}")
        viewer.add_labels(labels, name=f"labels {seed}")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-cellseg", "Train")
    for _ in range(args.images - 1):
        widget.train_pairs.add_row()
    for seed, row in enumerate(widget.train_pairs._rows):
        row[0].value, row[1].value = viewer.layers[f"image {seed}"], viewer.layers[f"labels {seed}"]
    model = os.path.join(tempfile.mkdtemp(), "latency.pt")
    settings = dict(
        CPU_NETWORK,
        epochs=args.epochs,
        im_dim=args.im_dim,
        batch=4,
        augments=1,
        num_workers=0,
        tune_postprocess=False,
        tb_samples=0,
        model=model,
    )
    for name, value in settings.items():
        w = widget.form.widgets[name]
        w.value = str(value) if isinstance(w.value, str) else value

    pan = QTimer(interval=50)
    step = [0]

    def move() -> None:  # a user panning and zooming
        step[0] += 1
        viewer.scene.camera.center = (args.size / 2 + 20 * np.sin(step[0] / 10), args.size / 2)
        viewer.scene.camera.zoom = 1.5 + 0.5 * np.cos(step[0] / 15)

    pan.timeout.connect(move)
    if args.pan:
        pan.start()
    idle = probe(lambda quit_: QTimer.singleShot(3000, quit_), [])
    start, training, first_batch = time.monotonic(), [], []

    def mark(event) -> None:
        if not first_batch and type(event).__name__ == "BatchEnded":
            first_batch.append(len(training))

    def train(quit_) -> None:
        widget.start_training()
        widget.worker.yielded.connect(mark)
        widget.worker.finished.connect(quit_)

    probe(train, training)
    seconds = time.monotonic() - start
    startup, training = training[: first_batch[0]], training[first_batch[0] :]
    pan.stop()
    result = {
        "training": summary(training),
        "startup_max_ms": round(max(startup, default=0.0), 1),
        "idle": summary(idle),
        "training_seconds": round(seconds, 1),
        "epochs": args.epochs,
        "panning": args.pan,
        "torch_threads": gui_threads(),
        "cpus": os.cpu_count(),
    }
    print(
        f"training {seconds:.1f} s; event-loop latency while training: "
        f"p50 {result['training']['p50_ms']} ms, p99 {result['training']['p99_ms']} ms "
        f"(idle p99 {result['idle']['p99_ms']} ms)"
    )
    print(json.dumps(result))
    viewer.close()
    return result


if __name__ == "__main__":
    main()
