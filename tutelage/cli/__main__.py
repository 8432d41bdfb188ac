"""``python -m tutelage.cli``: the command line in a child process, as the kill tests and bench run it."""

from tutelage.cli._app import main

main()
