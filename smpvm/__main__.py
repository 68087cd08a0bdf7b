"""``python -m smpvm``: the same command line as the ``smpvm`` script."""

from .cli import main

main()
