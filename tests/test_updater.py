"""The updater the spec chooses, and the tasks a meta-update trains on."""

from __future__ import annotations

import numpy as np

from agent.learn.build import build_batcher, build_learner
from agent.run.updater import LocalUpdater, MetaStepUpdater, build_updater
from common.policy import build_encoder
from common.spec import validate_spec
from tests.test_replay_store import episodes


def parts(**sections):
    spec = validate_spec({"tasks": ["FetchReach-v4", "FetchPush-v4"],
                          "budget": {"env_steps": 1000},
                          "learner": {"hidden_sizes": [8], "batch_size": 8,
                                      **sections.pop("learner", {})}, **sections}, "test")
    encoder = build_encoder(spec)
    learner = build_learner(spec, encoder)
    batcher = build_batcher(spec, encoder, 10_000, np.random.default_rng(0))
    return spec, learner, batcher, encoder


def test_the_spec_decides_how_updates_are_made() -> None:
    for sections, kind, prefetching in (({}, LocalUpdater, True),
                                        ({"learner": {"prefetch": False}}, LocalUpdater, False),
                                        ({"meta": {"update": "reptile"}}, MetaStepUpdater, False)):
        spec, learner, batcher, encoder = parts(**sections)
        updater = build_updater(spec, learner, batcher, encoder, group=None)
        assert type(updater) is kind
        assert (updater.prefetcher is not None) == prefetching
        updater.close()


def test_a_meta_update_trains_on_tasks_with_a_share_and_data_else_on_what_has_data() -> None:
    spec, learner, batcher, encoder = parts(meta={"update": "reptile"})
    updater = build_updater(spec, learner, batcher, encoder, group=None)
    trained: list[list[int]] = []
    updater.meta.step = lambda tasks, sample, weights: trained.append(tasks) or {}
    shape = batcher.replays[1].shape
    batcher.replays[1].add(episodes(0, 2, shape, "FetchPush-v4"))  # only Push has data
    updater.update(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    updater.update(np.array([1.0, 0.0]), np.array([0.5, 0.5]))  # Reach asked, Push has data
    assert trained == [[1], [1]]
