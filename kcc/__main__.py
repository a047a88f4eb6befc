"""``python -m kcc`` runs the command line."""

from kcc.cli import main

main()
