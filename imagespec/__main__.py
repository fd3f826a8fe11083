"""`python -m imagespec`: the same entry point as the `imagespec` command."""

from .cli import main

main()
