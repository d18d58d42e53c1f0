"""The learner: the actor-critic update and its algorithms (DDPG, TD3, SAC), meta-updates,
per-task signals, transfer, and building the learner and replays from a spec."""
