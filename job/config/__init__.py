"""Settings, read once at start and passed down, and what they parse: cluster URLs, TLS files, index names,
rollover conditions, shards and durations."""
