"""Train one goal-conditioned policy on several Fetch tasks: ``python main.py --spec S``."""

import os
import sys

# Every RPC pipe that closes as a run ends would log a C++ warning ("pipe closed"): peers
# leave without a collective shutdown, which a lost observer could hang. Warnings of
# torch's C++ side show with TORCH_CPP_LOG_LEVEL=WARNING.
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

from agent.cli import main  # after the log level: torch reads it when it loads

if __name__ == "__main__":
    sys.exit(main())
