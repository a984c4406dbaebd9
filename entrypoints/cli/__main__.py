"""`python -m entrypoints.cli serve`: how entrypoints/processes.py starts each API process."""

import sys

from entrypoints.cli import main

main(sys.argv[1:])
