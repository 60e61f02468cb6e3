"""`python -m genseq` runs the CLI, which also makes `torchrun -m genseq train ...` work."""

from genseq.commands.main import main

if __name__ == "__main__":
    main()
