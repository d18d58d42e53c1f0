"""Per-task episode replay: the ring of episodes, HER sampling, multi-task batches, and
replay chunks on disk."""
