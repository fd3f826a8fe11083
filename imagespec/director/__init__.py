"""Directors: where rendered trees land (a local directory, or a host over ssh + rsync)."""
