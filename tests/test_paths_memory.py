"""tianref.paths and tianref.memory at the edges their docstrings state, for any user.

paths: an --out that exists as a file is refused by check_out_path itself (train's click option refuses it
too, but RunDir and every caller of check_out_path rely on this check); a folder this process cannot write in
is refused (os.access denying W_OK, as the kernel does for a read-only folder; root passes the kernel's own
check, so the denial is simulated as tests/test_reliability_paths.py does).
memory: /proc/meminfo gives kB = 1024 bytes (proc(5)); a need equal to what is available fits ("refused when
need exceeds the available memory"); Theorem 6 lists at most the K(K - 1)/2 pairs there are, so asking for more
needs no more memory.
"""
import builtins
import io
import os

import pytest

from tianref import memory, paths
from tianref.errors import InputError


def test_an_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        paths.check_out_path(str(f))
    assert paths.check_out_path(str(tmp_path / "new")) == str(tmp_path / "new")


def test_a_folder_without_write_access_is_refused(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access

    def access(path, mode, *a, **k):
        if os.path.normpath(path) == str(ro) and mode & os.W_OK:
            return False
        return real(path, mode, *a, **k)
    monkeypatch.setattr(paths.os, "access", access)
    with pytest.raises(InputError, match="cannot write in"):
        paths.check_output_dir(ro / "sub", "--store-to")
    with pytest.raises(InputError, match="cannot write in"):
        paths.check_output_file(ro / "x.json", "--json")
    assert paths.check_output_dir(tmp_path / "rw", "--store-to") == str(tmp_path / "rw")


def test_meminfo_kilobytes_are_1024_bytes(monkeypatch):
    real = builtins.open

    def fake(path, *a, **k):
        if str(path) == "/proc/meminfo":
            return io.StringIO("MemTotal:       8000 kB\nMemFree:        1000 kB\nMemAvailable:   3000 kB\n")
        return real(path, *a, **k)
    monkeypatch.setattr(builtins, "open", fake)
    assert memory.available_bytes() == 3000 * 1024


def test_a_need_up_to_the_headroom_of_what_is_available_fits():
    """A command plans on 80 % of the available memory: Z1024's decomposition (21.5 GiB estimated, 21.3 GiB
    measured) passed with 22.8 GiB available and was killed by the kernel without a message."""
    memory.check_fits(800, "x", available=1000)
    with pytest.raises(InputError, match="needs about"):
        memory.check_fits(801, "x", available=1000)
    with pytest.raises(InputError, match=r"21.5 GiB of memory; this machine has 22.8 GiB available"):
        memory.check_fits(int(21.5 * 2 ** 30), "the decomposition", available=int(22.8 * 2 ** 30))


def test_theorem6_memory_counts_only_the_pairs_there_are():
    # K = 5 units have 10 pairs: asking for 200 lists the same 10
    assert memory.thm6_bytes(40, 5, n_top=200) == memory.thm6_bytes(40, 5, n_top=10)
    assert memory.thm6_bytes(40, 5, n_top=3) < memory.thm6_bytes(40, 5, n_top=10)
