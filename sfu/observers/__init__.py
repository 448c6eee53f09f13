"""Observers that watch media without decoding it (audio levels, active speaker)."""
