"""XLab core: the whole product without a window (catalog, inventory, quotas, simulator)."""
