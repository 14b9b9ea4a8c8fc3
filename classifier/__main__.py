"""`python -m classifier`: see classifier/cli.py."""

from classifier.cli import main

main()
