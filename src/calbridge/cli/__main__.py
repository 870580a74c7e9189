"""``python -m calbridge.cli``: the same as the ``calbridge`` command."""

from calbridge.cli.main import run

run()
