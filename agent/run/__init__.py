"""The principal agent's run: its loop, dispatch to observers and the transport, ingest,
the updater, and the evaluation and video loops."""
