"""Operations: what keeps the system in order (dead letters, later lifecycle and replay)."""
