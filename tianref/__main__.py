"""``python -m tianref`` is ``python cli.py``."""
from tianref.cli import main

if __name__ == "__main__":
    main()
