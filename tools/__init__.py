"""Developer tools that run against a real stage-sfu server (not part of the package)."""
