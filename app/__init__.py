"""XLab window: shows and edits what core holds. Imports no Qt at package level."""
