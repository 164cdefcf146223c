"""Directory domain rules (no HTTP here)."""
