"""The shared section helpers on hand-made inputs whose answers follow from their docstrings: the table cell
'median [min, max] (fired/n)', an empty phase, inclusive bounds, and the scale's epoch rounding."""
import math

import numpy as np

from tianref.experiments.reproduce import cells


def test_cell_of_one_run_and_of_a_partly_fired_condition():
    assert cells.cell(cells.stats([173.0])) == "173"                     # one run: its value alone
    # three runs, one fired: the range and the fired count are shown, not the bare median
    assert cells.cell(cells.stats([173.0, None, math.nan])) == "173 [173, 173] (1/3)"
    assert cells.cell(cells.stats([None, None])) == "—"


def test_med_of_is_none_when_no_run_has_the_value():
    assert cells.med_of(cells.stats([None, None])) is None               # not NaN: JSON and tables read None
    assert cells.med_of(cells.stats([1.0, 3.0, None])) == 2.0


def test_phase_median_is_inclusive_and_first_and_lt_are_as_stated():
    col = np.arange(10, dtype=float)                                    # col[t] = t
    assert cells.phase_median(col, 2, 5) == 3.5                         # rows 2..5 inclusive; 2..4 gives 3
    assert math.isnan(cells.phase_median(col, 5, 2)) and math.isnan(cells.phase_median(col, math.nan, 5))
    assert cells.first([0.1, 0.5, 0.7], 0.5) == 1.0                     # col >= thr: equality counts
    assert cells.lt(1.0, 2.0) and not cells.lt(2.0, 2.0) and not cells.lt(None, 2.0)


def test_scaled_rounds_to_the_nearest_epoch():
    # 29 x 0.3 = 8.7 -> 9 (the nearest integer, as the protocols round checkpoints), not 8 by truncation
    assert cells.scaled(29, {"epoch_factor": 0.3}) == 9
    assert cells.scaled(400, {"epoch_factor": 1.0}) == 400


def test_condition_label_names_a_non_default_activation_or_loss():
    assert cells.condition_label({"eta": 2e-4, "act": "sqr"}) == "eta=0.0002"
    assert cells.condition_label({"eta": 0.0, "act": "relu"}) == "relu tian eta=0"      # activation alone
    assert cells.condition_label({"eta": 0.0, "act": "sqr", "loss": "ce"}) == "sqr ce eta=0"   # loss alone


def test_condition_label_of_a_config_without_act_reads_the_loaders_default():
    """A stored config without "act" is the default activation (TrainConfig.from_dict fills it: x²), so its
    label is the paper's, never "None tian ..."; without "loss" as well. With a non-default loss the
    activation is named as the loader reads it."""
    from tianref.config import TrainConfig
    assert TrainConfig.from_dict({"eta": 2e-4}).act == "sqr"                  # what the loader applies
    assert cells.condition_label({"eta": 2e-4}) == "eta=0.0002"
    assert cells.condition_label({"eta": 0.0, "loss": "ce"}) == "sqr ce eta=0"
