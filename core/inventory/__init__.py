"""The lab inventory: threat classes and items, luggage and bags, scanners, poses."""

from core.inventory.apply import ImportReport, export_inventory, import_inventory
from core.inventory.sections import CLUTTER_LEVELS, SECTIONS

__all__ = ["CLUTTER_LEVELS", "SECTIONS", "ImportReport", "export_inventory", "import_inventory"]
