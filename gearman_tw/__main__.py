"""
C{python -m gearman_tw}: the C{gearman-tw} command.
"""

from gearman_tw.cli import run

run()
