"""Train one goal-conditioned policy on several Fetch tasks: ``python main.py --spec S``."""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
