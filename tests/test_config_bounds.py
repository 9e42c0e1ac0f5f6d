"""The edges of TrainConfig's checks and readings, each against the documented rule.

Sources: checkpoint epochs lie in [0, --epochs] (a run of E epochs has rows 0..E, docs/paper-protocol.md §3);
--init-scale alpha >= 0 multiplies the initial V (docs/math.md §10, "--init-scale"), so alpha = 0 is a run
whose V starts at zero; a stored config's windows and checkpoint epochs are integers (config.py, from_dict).
Each case sits on the boundary, so moving a comparison by one step fails it.
"""
import pytest

from tianref.config import TrainConfig, validate
from tianref.errors import InputError

SMALL = TrainConfig(M=11, K=32, n_train=60, epochs=20)


def ok(**kw):
    return validate(SMALL.replace(**kw))


def refused(fragment, **kw):
    with pytest.raises(InputError, match=fragment):
        validate(SMALL.replace(**kw))


def test_checkpoint_epochs_lie_in_zero_to_epochs_inclusive():
    ok(checkpoint_epochs=(0, 20))
    refused("outside", checkpoint_epochs=(21,))
    refused("outside", checkpoint_epochs=(-1,))


def test_init_scale_zero_is_allowed_and_a_negative_one_refused():
    ok(init_scale=0.0)                       # alpha = 0: V starts at zero
    refused("init-scale", init_scale=-1e-12)


@pytest.mark.parametrize("key, value", [("windows", [20.5]), ("windows", [True]), ("checkpoint_epochs", [1.0])])
def test_stored_integer_lists_refuse_other_items(key, value):
    d = dict(SMALL.to_dict(), **{key: value})
    with pytest.raises(InputError, match="a list of integers"):
        TrainConfig.from_dict(d)
