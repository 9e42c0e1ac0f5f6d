"""What the reliability tests assert about a command, in one place: run it in-process, snapshot a folder,
and check a refusal (exit 2, one "Error:" line on stderr, no traceback, the expected fragments)."""
from pathlib import Path

from click.testing import CliRunner

from tianref.cli import main


def cli(args):
    """``python cli.py ARGS`` in-process (click's runner; stderr kept apart)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(d: Path) -> dict:
    """Every file below d (hidden ones included, the lock file excluded) -> its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob("*"))
            if p.is_file() and p.name != ".lock"}


def refused(r, *fragments) -> str:
    """Assert a bad-input refusal naming every fragment; returns its line."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), r.stderr
    for f in fragments:
        assert f in err[0], err[0]
    return err[0]


def as_before_seals(run_dir) -> None:
    """Make a run folder look as a version before seals wrote it: no seal in any checkpoint and no
    'sealed_after' in config.json's identity."""
    import json
    import numpy as np
    d = Path(run_dir)
    for f in (d / "checkpoints").glob("*.npz"):
        a = dict(np.load(f))
        if a.pop("state_digest", None) is not None:
            np.savez(f, **a)
    meta = json.loads((d / "config.json").read_text())
    meta["identity"].pop("sealed_after", None)
    (d / "config.json").write_text(json.dumps(meta, indent=1))
