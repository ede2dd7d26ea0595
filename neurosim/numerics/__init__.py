"""numerics stage."""
