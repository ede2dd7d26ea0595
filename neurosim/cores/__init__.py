"""cores stage."""
