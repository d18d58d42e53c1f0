"""Episodes into the run: replay, normalizer statistics, the task mix's feedback, the
training window and the run's env-step and episode counters."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agent.ranks.learner_ranks import RankGroup
from agent.replay.episode_replay import EpisodeReplay
from agent.report.training_window import TrainingWindow
from agent.run.task_mix import TaskMix
from common.envs import family_of
from common.messages import EpisodeBatch
from common.normalizer import ObservationEncoder


class EpisodeIngest:
    """Stores arriving episodes; the one place a task's name becomes its index."""

    def __init__(self, tasks: Sequence[str], replays: list[EpisodeReplay],
                 encoder: ObservationEncoder, encoder_updated: Callable[[], None],
                 task_mix: TaskMix, window: TrainingWindow, learner_updates: Callable[[], int],
                 group: RankGroup | None) -> None:
        self.tasks, self.replays, self.group = list(tasks), replays, group
        self.encoder, self._encoder_updated = encoder, encoder_updated
        self.task_mix, self.window, self._learner_updates = task_mix, window, learner_updates
        self._relabeled = [family_of(task).RELABELS_GOALS for task in self.tasks]
        """Per task: whether achieved goals may become inputs (HER), so the goal normalizer
        learns them too (Meta-World's carry rewards, never an input)."""
        self.env_steps = 0
        """Env steps stored so far, all tasks (checkpointed)."""
        self.episodes = 0
        """Episodes stored so far, all tasks (checkpointed)."""

    def store(self, batch: EpisodeBatch, noise_free: bool) -> None:
        """Replay (this rank's share, under MPI), normalizer, task mix and training window
        get the task's index; the counters advance."""
        task = self.tasks.index(batch.task)
        if self.group is None or self.group.route(batch):
            self.replays[task].add(batch)
        goals = (np.concatenate([batch.achieved_goal, batch.desired_goal], axis=1)
                 if self._relabeled[task] else batch.desired_goal)
        self.encoder.update(task, batch.obs, goals)
        self._encoder_updated()
        self.task_mix.episodes_arrived(task, batch, noise_free)
        self.env_steps += batch.env_steps
        self.episodes += batch.num_episodes
        self.window.add_episodes(task, batch, self._learner_updates())
