"""`python -m myapp` runs the CLI."""

from myapp.cli import main

main()
