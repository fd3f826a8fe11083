"""Transports: how imagespec reaches a director (a local directory, or a host over ssh + rsync)."""
