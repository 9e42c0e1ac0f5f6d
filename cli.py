"""Entry point in a source checkout: ``python cli.py train|thm6|sweep|summarize|reproduce|plot``.

Not installed (setup.cfg installs the package only): an installed copy runs as ``tianref ...`` or
``python -m tianref ...`` (tianref/__main__.py), the same program."""
from tianref.cli import main

if __name__ == "__main__":
    main()
