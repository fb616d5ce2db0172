"""Annotations: the neutral label model, file formats, and (elsewhere) their catalog side."""
