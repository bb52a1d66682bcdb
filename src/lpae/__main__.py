"""``python -m lpae`` runs the command line."""

from lpae.cli import main

main()
