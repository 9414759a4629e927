"""`python -m training_export`."""

import sys

from training_export.cli import main

if __name__ == "__main__":
    sys.exit(main())
