"""napari dock widgets (training, prediction, blob inspector), sample data and the model reader.

Listed in ``napari.yaml``; each module is imported only when napari needs it, and none
imports torch: the engine runs, and imports it, inside thread workers.
"""
