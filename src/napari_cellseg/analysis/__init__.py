"""Analysis: object matching scores, measurements, ImageJ ROIs, blob regions, figures."""
