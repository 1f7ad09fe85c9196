"""``python -m node`` is the ``palermo`` command."""

from node.cli import main

main()
