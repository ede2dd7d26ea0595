"""system stage."""
