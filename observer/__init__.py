"""Observers: environment adapters, vectorized rollouts and the RPC worker process."""
