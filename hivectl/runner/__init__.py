"""Running guests: the lock, the per-guest supervisor, its log, and the client-side controls."""
