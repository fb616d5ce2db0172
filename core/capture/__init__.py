"""Capture: from quota deficits to planned sessions (``planner``), and the
technician's run through a session (``sessions``): barcode confirmation,
skips, flags, retakes, undo, one technician at a time; a printable checklist
(``checklist``)."""

from core.capture.sessions import StepSpec, open_session, steps

__all__ = ["StepSpec", "open_session", "steps"]
