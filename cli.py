"""Entry point in a source checkout: ``python cli.py COMMAND`` (train, train-batch, sweep, summarize, plot,
thm6, edge, group, reproduce; ``python cli.py --help`` lists them).

Not installed (setup.cfg installs the package only): an installed copy runs as ``tianref ...`` or
``python -m tianref ...`` (tianref/__main__.py), the same program."""
import sys

try:
    from tianref.cli import main
except KeyboardInterrupt:        # Ctrl-C while the program loads (numpy, scipy): nothing has been done yet
    sys.stderr.write("Aborted!\n")
    sys.exit(130)

if __name__ == "__main__":
    main()
