# Two commands do everything (see README):  make demo   and   make test
.PHONY: setup demo test napari lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/cellseg demo

test: setup
	.venv/bin/python -m pytest -p xvfb tests src/napari_cellseg

napari: setup
	.venv/bin/napari

lint: setup
	.venv/bin/python -m ruff check src tests benchmarks scripts
