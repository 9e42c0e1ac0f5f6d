"""Numbers on the command line have one spelling (tianref/numtext.py): ASCII digits, no '_' separators,
as group names (tests/test_groups.py). int() and float() alone read '\u0663' as 3 and '1_0' as 10, so
`train --M \u0663` trained M = 3 and `--eta 1e-400` trained the eta = 0 control. And --threads is
bounded by the C int the BLAS takes: 10^23 ended in a ctypes traceback (exit 1)."""
import pytest

from cli_checks import cli, refused, snapshot
from tianref import threads as blas_threads
from tianref.config import parse_list, tail_rank_of
from tianref.errors import InputError
from tianref.experiments.jobs import parse_seeds
from tianref.numtext import parse_float, parse_int

OTHER_DIGITS = ["\u0663", "\uff17", "1\u0660", "\u0967", "1_0", "0x10", "7.0", "", " ", "+", "1e3"]


@pytest.mark.parametrize("text", OTHER_DIGITS)
def test_parse_int_refuses_every_other_spelling(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_parse_int_reads_ascii_with_sign_and_blanks():
    assert [parse_int(t) for t in ("7", " 7 ", "+7", "-7", "007", "-0", "99999999999999999999999")] == \
        [7, 7, 7, -7, 7, 0, 99999999999999999999999]


@pytest.mark.parametrize("text", ["\u0663", "\u0661e-3", "2e-\u0664", "1_0.5", "0x10", "", "e3", "1e", "--1",
                                  "1e-400", "0.1e-330", "\u00a01"])
def test_parse_float_refuses_other_spellings_and_a_nonzero_that_rounds_to_zero(text):
    with pytest.raises(ValueError):
        parse_float(text)


def test_parse_float_reads_the_usual_forms():
    got = [parse_float(t) for t in ("2e-4", ".5", "5.", "-0", "0e-400", "0.000", "1E+2", "1e-310")]
    assert got == [2e-4, 0.5, 5.0, -0.0, 0.0, 0.0, 100.0, 1e-310]
    assert parse_float("inf") == float("inf") and parse_float("-Infinity") == float("-inf")
    assert parse_float("nan") != parse_float("nan")          # read, then refused by each option's check


def test_every_text_parser_uses_it():
    for call in (lambda: parse_list("5,\u0661\u0660", "--windows"), lambda: parse_list("1_0", "--eta", float),
                 lambda: parse_seeds("0-\u0663"), lambda: parse_seeds("1_0"),
                 lambda: tail_rank_of("\u0663", 11), lambda: tail_rank_of("M-\u0661", 11)):
        with pytest.raises(InputError):
            call()
    assert parse_list(" 5, 10 ", "--windows") == (5, 10) and parse_seeds("0-2, 5") == (0, 1, 2, 5)


def test_the_thread_variables_are_read_the_same_way():
    assert blas_threads.from_env({"OMP_NUM_THREADS": "\u0663"}) is None
    assert blas_threads.from_env({"OMP_NUM_THREADS": str(2 ** 31)}) is None
    assert blas_threads.from_env({"OMP_NUM_THREADS": " 3"}) == 3


SMALL = ["--M", "7", "--K", "8", "--epochs", "2", "--windows", "3"]


@pytest.mark.parametrize("args, needle", [
    (["train", "--M", "\u0667", "--K", "8", "--epochs", "2"], "ASCII digits"),
    (["train", *SMALL[2:], "--M", "7", "--seed", "1_0"], "without '_'"),
    (["train", *SMALL, "--eta", "\u0661e-3"], "ASCII digits"),
    (["train", *SMALL, "--eta", "1e-400"], "rounds to 0"),
    (["train", *SMALL, "--lr", "1_0"], "without '_'"),
    (["train", *SMALL, "--checkpoint-epochs", "\u0661"], "ASCII digits"),
    (["train", *SMALL, "--tail-rank", "\u0663"], "--tail-rank"),
    (["train", *SMALL, "--threads", str(10 ** 23)], "--threads"),
    (["train", *SMALL, "--threads", str(2 ** 32)], "--threads"),
])
def test_train_refuses_them_in_one_line_and_writes_nothing(tmp_path, args, needle):
    refused(cli([*args, "--out", tmp_path / "r"]), needle)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, needle", [
    (["sweep", "ROOT", "--plan", "--M", "\u0667"], "ASCII digits"),
    (["sweep", "ROOT", "--plan", "--epochs", "\u0663"], "ASCII digits"),
    (["sweep", "ROOT", "--plan", "--seeds", "\u0660-\u0663"], "ASCII digits"),
    (["sweep", "ROOT", "--plan", "--threads", str(10 ** 23)], "--threads"),
    (["sweep", "ROOT", "--plan", "--", "--lr", "\u0661e-3"], "ASCII digits"),
    (["summarize", "ROOT", "--window", "\u0665"], "ASCII digits"),
    (["summarize", "ROOT", "--slope-threshold", "\u0660.\u0660\u0664"], "ASCII digits"),
    (["plot", "ROOT", "--dpi", "\u0661\u0662\u0660"], "ASCII digits"),
    (["thm6", "--run", "RUN", "--at-epochs", "\u0661"], "ASCII digits"),
    (["thm6", "--run", "ROOT", "--threads", str(10 ** 23)], "--threads"),
    (["edge", "--run", "RUN", "--at-epochs", "3", "--n-random", "\u0661"], "ASCII digits"),
    (["edge", "--run", "ROOT", "--at-epochs", "3", "--threads", str(10 ** 23)], "--threads"),
    (["group", "Z5", "--M", "\u0665"], "ASCII digits"),
    (["reproduce", "--scale", "smoke", "--root", "ROOT", "--top-pairs", "\u0662"], "ASCII digits"),
    (["train-batch", "--threads", str(10 ** 23), "--member", "--out ROOT/m --M 7 --K 8 --epochs 2"], "--threads"),
])
def test_every_command_refuses_them_before_touching_anything(tmp_path, args, needle):
    root, run = tmp_path / "root", tmp_path / "run"
    root.mkdir()
    (root / "keep.txt").write_text("x")
    if "RUN" in args:
        assert cli(["train", *SMALL, "--epochs", "3", "--out", run]).exit_code == 0
    before = snapshot(tmp_path)
    refused(cli([str(a).replace("ROOT", str(root)).replace("RUN", str(run)) for a in args]), needle)
    assert snapshot(tmp_path) == before
