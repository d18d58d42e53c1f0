"""MPI learner ranks on one node: the rank group, gradient averaging, MPI start-up."""
