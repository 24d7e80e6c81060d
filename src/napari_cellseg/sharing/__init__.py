"""Models that travel: bioimage.io packages and ONNX files, written and read back."""
