"""What CuPy provides, as the strict fake backend (tianref/fakexp.py) admits it: the allow-lists.

References: CuPy's API reference and "Differences between CuPy and NumPy" (docs.cupy.dev, v13; the GPU extra
installs cupy-cuda12x>=13), each function's page for its signature; cupyx.scipy.linalg.solve_triangular
(v12's page: one (M, M) matrix), cupy.linalg.qr (its source asserts rank 2), cupy.take ("does not support mode
option"), cupy.sort ("kind ... Unlike in NumPy any other options are not accepted"), CuPy's median and
quantile (cupy/_core/_routines_statistics.pyx, cupy/_statistics/order.py: no NaN check).

Each table maps a name to the parameters of CuPy's own signature, in order (fakexp refuses any other keyword
and one positional argument too many); None as the first entry: any positional arguments, then only the
keywords after "**". A name that is in no table is refused: before adding one, check CuPy's documentation
has it, with NumPy's meaning and the parameters listed.
"""
from __future__ import annotations

FUNCTIONS = {
    # creation
    "zeros": ("shape", "dtype", "order"), "ones": ("shape", "dtype", "order"), "empty": ("shape", "dtype", "order"),
    "full": ("shape", "fill_value", "dtype", "order"),
    "zeros_like": ("a", "dtype", "order", "subok", "shape"), "ones_like": ("a", "dtype", "order", "subok", "shape"),
    "empty_like": ("a", "dtype", "order", "subok", "shape"),
    "full_like": ("a", "fill_value", "dtype", "order", "subok", "shape"),
    "eye": ("N", "M", "k", "dtype", "order"), "identity": ("n", "dtype"),
    "arange": ("start", "stop", "step", "dtype"),
    "linspace": ("start", "stop", "num", "endpoint", "retstep", "dtype", "axis"),
    # shapes and joins
    "reshape": ("a", "newshape", "order"), "ravel": ("a", "order"), "squeeze": ("a", "axis"),
    "expand_dims": ("a", "axis"), "swapaxes": ("a", "axis1", "axis2"), "transpose": ("a", "axes"),
    "moveaxis": ("a", "source", "destination"), "broadcast_to": ("array", "shape"),
    "stack": ("tup", "axis", "out", "dtype", "casting"), "concatenate": ("tup", "axis", "out", "dtype", "casting"),
    "tile": ("A", "reps"), "repeat": ("a", "repeats", "axis"), "flip": ("a", "axis"), "roll": ("a", "shift", "axis"),
    # indexing
    "take": ("a", "indices", "axis", "out"), "take_along_axis": ("a", "indices", "axis"),
    "where": ("condition", "x", "y"), "nonzero": ("a",), "argwhere": ("a",),
    "diagonal": ("a", "offset", "axis1", "axis2"), "diag": ("v", "k"), "tril": ("m", "k"), "triu": ("m", "k"),
    # reductions and scans
    "sum": ("a", "axis", "dtype", "out", "keepdims"), "prod": ("a", "axis", "dtype", "out", "keepdims"),
    "mean": ("a", "axis", "dtype", "out", "keepdims"),
    "var": ("a", "axis", "dtype", "out", "ddof", "keepdims"), "std": ("a", "axis", "dtype", "out", "ddof", "keepdims"),
    "max": ("a", "axis", "out", "keepdims"), "min": ("a", "axis", "out", "keepdims"),
    "amax": ("a", "axis", "out", "keepdims"), "amin": ("a", "axis", "out", "keepdims"),
    "argmax": ("a", "axis", "dtype", "out", "keepdims"), "argmin": ("a", "axis", "dtype", "out", "keepdims"),
    "any": ("a", "axis", "out", "keepdims"), "all": ("a", "axis", "out", "keepdims"),
    "count_nonzero": ("a", "axis"), "cumsum": ("a", "axis", "dtype", "out"), "cumprod": ("a", "axis", "dtype", "out"),
    "bincount": ("x", "weights", "minlength"),
    # sorting
    "sort": ("a", "axis", "kind"), "argsort": ("a", "axis", "kind"), "partition": ("a", "kth", "axis"),
    "searchsorted": ("a", "v", "side", "sorter"),
    # products
    "dot": ("a", "b", "out"), "vdot": ("a", "b"), "inner": ("a", "b"), "outer": ("a", "b", "out"),
    "tensordot": ("a", "b", "axes"), "trace": ("a", "offset", "axis1", "axis2", "dtype", "out"),
    "einsum": (None, "**", "dtype", "optimize"),
    # elementwise functions that are not ufuncs, comparisons of whole arrays
    "clip": ("a", "a_min", "a_max", "out"), "around": ("a", "decimals", "out"), "round": ("a", "decimals", "out"),
    "isclose": ("a", "b", "rtol", "atol", "equal_nan"), "allclose": ("a", "b", "rtol", "atol", "equal_nan"),
    "array_equal": ("a1", "a2", "equal_nan"), "result_type": (None,),
}
UFUNCS = frozenset((
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "negative", "positive", "power",
    "remainder", "mod", "fmod", "divmod", "absolute", "abs", "fabs", "sign", "sqrt", "square", "reciprocal",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
    "arctan2", "sinh", "cosh", "tanh", "hypot", "maximum", "minimum", "fmax", "fmin", "isnan", "isinf",
    "isfinite", "signbit", "copysign", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
    "invert", "floor", "ceil", "trunc", "rint", "matmul"))
UFUNC_KEYWORDS = ("out", "dtype", "casting")            # CuPy's ufunc call: no where=, order=, subok=
# linalg: name -> (parameters, the most dimensions of the first argument; None: stacks (..., M, N) too)
LINALG = {
    "eigh": (("a", "UPLO"), None), "eigvalsh": (("a", "UPLO"), None),
    "svd": (("a", "full_matrices", "compute_uv"), None),          # no hermitian=
    "cholesky": (("a",), None),                                   # no upper= (NumPy 2)
    "solve": (("a", "b"), None), "inv": (("a",), None), "det": (("a",), None), "slogdet": (("a",), None),
    "qr": (("a", "mode"), 2), "lstsq": (("a", "b", "rcond"), 2), "pinv": (("a", "rcond"), None),
    "norm": (("x", "ord", "axis", "keepdims"), None), "matrix_power": (("M", "n"), None),
}
SCIPY_LINALG = {                                                  # cupyx.scipy.linalg
    "solve_triangular": (("a", "b", "trans", "lower", "unit_diagonal", "overwrite_b", "check_finite"), 2),
}
SPECIAL = frozenset(("erf", "erfc", "erfinv", "expit", "logit"))   # cupyx.scipy.special ufuncs
FFT = {k: ("a", "n", "axis", "norm") for k in ("fft", "ifft", "rfft", "irfft")}
FFT.update(fftfreq=("n", "d"), rfftfreq=("n", "d"))
REFUSED = {k: "CuPy's does not return NaN for a slice holding a NaN as NumPy's does; use tianref.orderstats"
           for k in ("median", "nanmedian", "quantile", "nanquantile", "percentile", "nanpercentile")}
SORT_KINDS = (None, "stable")                                     # CuPy sorts with one (stable) algorithm
# array methods -> the parameters of cupy.ndarray's method (None: any positional arguments, then "**" keywords)
METHODS = {
    "astype": ("dtype", "order", "casting", "subok", "copy"),
    "sum": ("axis", "dtype", "out", "keepdims"), "prod": ("axis", "dtype", "out", "keepdims"),
    "mean": ("axis", "dtype", "out", "keepdims"), "var": ("axis", "dtype", "out", "ddof", "keepdims"),
    "std": ("axis", "dtype", "out", "ddof", "keepdims"),
    "max": ("axis", "out", "keepdims"), "min": ("axis", "out", "keepdims"),
    "argmax": ("axis", "out", "dtype", "keepdims"), "argmin": ("axis", "out", "dtype", "keepdims"),
    "any": ("axis", "out", "keepdims"), "all": ("axis", "out", "keepdims"),
    "cumsum": ("axis", "dtype", "out"), "cumprod": ("axis", "dtype", "out"),
    "reshape": (None, "**", "order"), "transpose": (None,), "swapaxes": ("axis1", "axis2"),
    "ravel": ("order",), "flatten": ("order",), "squeeze": ("axis",), "copy": ("order",),
    "take": ("indices", "axis", "out"), "sort": ("axis", "kind"), "argsort": ("axis", "kind"),
    "partition": ("kth", "axis"), "nonzero": (), "diagonal": ("offset", "axis1", "axis2"),
    "trace": ("offset", "axis1", "axis2", "dtype", "out"), "dot": ("b", "out"), "clip": ("min", "max", "out"),
    "round": ("decimals", "out"), "repeat": ("repeats", "axis"), "fill": ("value",), "view": ("dtype",),
    "conj": (), "tolist": (), "tobytes": (),
}
ATTRIBUTES = frozenset(("shape", "ndim", "dtype", "size", "nbytes", "itemsize", "strides", "real", "imag",
                        "flags", "base"))
