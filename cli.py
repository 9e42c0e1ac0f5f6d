"""Entry point: ``python cli.py train|thm6|sweep|summarize|reproduce|plot``."""
from tianref.cli import main

if __name__ == "__main__":
    main()
