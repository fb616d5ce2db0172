"""A simulated X-ray scanner: Beer-Lambert images written into a drop folder."""
