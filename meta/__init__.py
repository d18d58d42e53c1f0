"""Multi-task strategies named in the spec: task scheduling and task weighting."""
