"""Domain errors. Each message is written for the person who has to act on it."""

from __future__ import annotations

from dataclasses import dataclass


class XLabError(Exception):
    """Base of every error XLab reports to a user (CLI exit code 2, GUI dialog)."""


class LabNotFoundError(XLabError):
    pass


class PermissionDeniedError(XLabError):
    """The signed-in user's role may not do this (core.catalog.rights; CLI exit code 2, a dialog
    in the window)."""


class CatalogError(XLabError):
    pass


class CatalogTooNewError(CatalogError):
    pass


@dataclass(frozen=True)
class InputProblem:
    """One problem in a user-supplied file, pointing at where to fix it."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


class InputFileError(XLabError):
    """A user-supplied file (inventory, plan spec) has problems; nothing was changed."""

    def __init__(self, problems: list[InputProblem]):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = len(self.problems) - 50
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(self.problems)} problem(s) found; nothing was changed:\n{shown}{tail}"
        )


class UnknownNameError(XLabError):
    pass


class PlanError(XLabError):
    pass


class PlanPublishedError(PlanError):
    pass


class SizingError(XLabError):
    pass


class IngestRunningError(XLabError):
    """Another process already ingests some of the scanners asked for."""

    def __init__(self, owners: dict, who: str):
        self.owners = dict(owners)  # scanner name -> core.ingest.lock.LockOwner
        self.who = who
        super().__init__(
            f"ingest already runs for {who}. One process ingests a scanner's drop folder at a time: "
            "stop that one first, or leave ingest to it (a window can still show the lab)"
        )


class StoreFullError(XLabError):
    """The disk holding the image store (or the catalog) has no space left.

    Nothing is lost: files not yet taken stay where they are.
    """


class LabelError(XLabError):
    """A label change the catalog cannot take (unknown box, image or class; a box outside its image)."""


class LabelImportError(InputFileError):
    """An annotation import refused (nothing written); ``report`` says what was read and found."""

    def __init__(self, problems: list[InputProblem], report: object):
        super().__init__(problems)
        self.report = report


class DatasetError(XLabError):
    """A dataset version that cannot be frozen or read as asked; ``problems``: one line each."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        shown = "".join(f"\n  {p}" for p in self.problems[:50])
        more = len(self.problems) - 50
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{message}{shown}{tail}")


class EvaluationError(XLabError):
    """An evaluation asked for in a way that would give a misleading number (a threshold
    picked on the test set, a rate with nothing to measure it on)."""


class RunError(XLabError):
    """A training or evaluation run that cannot be created, started, cancelled or resumed as asked."""


class RunnerBusyError(RunError):
    """Another process works the run queue (one run per GPU at a time); ``owner`` says who."""

    def __init__(self, message: str, owner: str):
        super().__init__(message)
        self.owner = owner


class TrainingError(RunError):
    """What a training or evaluation run was given cannot be used (a parameter, a manifest, a spec,
    a weights file or a checkpoint); the message names it and says what to change."""


class AuditError(XLabError):
    """An audit log query that cannot run as asked (a filter, a date, an export file)."""


class BackupError(XLabError):
    """A backup, restore or verify that cannot be done as asked (a destination in use, a target
    that is not empty, a damaged backup); the message says which file and what to do."""
