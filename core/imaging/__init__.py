"""Showing X-ray images: windowing, cached pyramids, the pseudo-colour view (no Qt)."""
