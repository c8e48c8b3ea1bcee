"""``python -m dve_teach check|demo|bench`` (see `dve_teach.cli`)."""
import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
