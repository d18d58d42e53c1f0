"""What a run reports: the metrics pipeline and its sinks, training windows, summaries,
plots, videos and evaluation."""
