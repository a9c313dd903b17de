"""CI helpers for Berth (PR preview comments and friends). Stdlib + PyYAML only."""
