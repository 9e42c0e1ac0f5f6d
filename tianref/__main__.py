"""``python -m tianref`` is ``python cli.py``."""
import sys

try:
    from tianref.cli import main
except KeyboardInterrupt:        # Ctrl-C while the program loads (numpy, scipy): nothing has been done yet
    sys.stderr.write("Aborted!\n")
    sys.exit(130)

if __name__ == "__main__":
    main()
