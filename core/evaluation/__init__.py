"""XLab's own evaluation of detection results.

``coco``: COCO-style AP/AR from standard ground-truth and detection-results
files, agreeing with pycocotools. ``security``: the detection rate and
false-alarm rate the KPIs are written in, with Wilson intervals over distinct
setups and the operating threshold chosen on the validation split.
"""
