"""Reading and writing text the job does not control: bounded JSON, bounded files, redaction of secrets,
tables for terminals, and diagnostics with file and line."""
