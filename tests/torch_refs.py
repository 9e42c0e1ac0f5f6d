"""Reading a stored PyTorch reference (reference_results/torch/NAME.{json,npz}) for the tests.

A missing file is a failure, never a skip: the message names the command that regenerates it.
"""
import json
import os

import numpy as np
import pytest

REF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "reference_results", "torch")


def load_reference(name: str, regen: str):
    """(the .json document, {array name: array} of the .npz) of one stored reference."""
    path_json, path_npz = (os.path.join(REF_DIR, name + ext) for ext in (".json", ".npz"))
    for p in (path_json, path_npz):
        if not os.path.isfile(p):
            pytest.fail(f"missing reference file {p}; regenerate it with `{regen}`")
    with open(path_json, encoding="utf-8") as f:
        doc = json.load(f)
    with np.load(path_npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return doc, arrays
