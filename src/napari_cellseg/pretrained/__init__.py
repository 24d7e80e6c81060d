"""The weights and yaml of the models that come with the package.

Name them wherever a model is asked for (``--config nuclei``);
:data:`napari_cellseg.model_file.BUILTIN_MODELS` lists them and tells what each is.
"""
