"""Reusable widgets shared by several areas of the window."""
