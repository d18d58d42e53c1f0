"""The principal agent: spec, replay, HER, TD3 learner, metrics, checkpoints, orchestration."""
