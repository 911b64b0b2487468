"""peernet wire protocol (pure: no I/O, no clock)."""
