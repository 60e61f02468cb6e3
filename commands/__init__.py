"""The genseq command-line interface, installed as ``genseq.commands``.

``main.py`` builds the Typer app and registers every command in one place; each command lives
in its own module and imports torch and other heavy libraries inside its function, so
``genseq --help`` starts instantly.
"""
