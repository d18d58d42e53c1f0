"""The principal agent process.

Subpackages, each importing only those after it (tests/test_layers.py): ``run`` (the
run's loop, dispatch, transport, ingest, updater), ``ranks`` (MPI learner ranks),
``report`` (metrics, sinks, summaries, plots, videos, evaluation), ``learn`` (the learner),
``replay`` (episodes, HER, batches); below them ``checkpoint`` and ``update_types``. The
command line (``cli``) and process start-up (``launcher``, ``machine``) sit on top.
"""
