"""One frozen dataclass holds every training setting; ``validate`` names the first bad one.

Defaults are the paper code's protocol (paper-protocol.md §3): M = 71, K = 2048,
n_train = 2016, sigma = x^2, the class-centred MSE, Adam(lr 1e-3, coupled L2 eta = 2e-4),
float32, rolling window 20 (its Gram in float64: a documented deviation, docs/math.md §8).

Weight-decay schedule: ``eta_schedule`` = ((t_0, eta_0), (t_1, eta_1), ...) with 0 = t_0 < t_1 < ...
The step from row t to row t + 1 uses eta_j of the last entry with t_j <= t (``eta_at``). An empty
schedule is the one-entry schedule ((0, eta),); a given schedule sets eta = eta_0. ``to_dict`` omits an
empty schedule, so a plain run's config.json is what it was before schedules existed.

Ridge evaluation: ``ridge_eval`` (docs/math.md §10) is written only for ``top_layer = "ridge"``. A stored
ridge config without the key was written before the option existed, when every row saw V = ridge(current W);
``from_dict`` reads it as "current", so such a run resumes and is summarised as what it was.

``tail_rank`` (the r of the logged spectral tail W_tail, docs/edge-and-clocks.md §4) chooses what is
logged, not how the run trains; a stored config without it (written before it existed) reads as the
default "M-1", so an old run resumes and its checkpoints compare equal.

``group`` (docs/groups.md §6) names the task table: "" is Z_M's (a + b) mod M, the task every run had
before the option existed; ``to_dict`` omits it then, so a plain run's config.json is unchanged and an old
config reads as Z_M. Otherwise it is a tianref.groups spec (S4, D5, Z3xZ5, Q8xZ3, table:FILE, expr:EXPR)
whose order must be M; a table that is not a group is refused unless it is an expr: table.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from tianref.errors import InputError
from tianref.numtext import parse_float, parse_int, parse_number
from tianref.loss import LOSSES
from tianref.model import ACTIVATIONS
from tianref.spectra import GRAM_MODES

OPTIMIZERS = ("adam", "adamw", "sgd", "muon")
TOP_LAYERS = ("trained", "ridge")
RIDGE_EVALS = ("held", "current")   # which V a ridge run's rows see (docs/math.md §10)
DTYPES = ("float32", "float64")
METRIC_SETS = ("full", "core")


@dataclass(frozen=True)
class TrainConfig:
    M: int = 71
    K: int = 2048
    n_train: int = 2016
    eta: float = 2e-4
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    epochs: int = 400
    seed: int = 0
    act: str = "sqr"
    loss: str = "tian"
    optimizer: str = "adam"
    dtype: str = "float32"
    windows: tuple = (20,)
    gram_dtype: str = "float64"      # precision of the update Gram (float32 = the paper's code)
    log_grams: tuple = ()            # further Gram modes logged beside it (keys ..._f32, ..._f32seq)
    metrics: str = "full"
    indep_pairs: int = 500
    checkpoint_epochs: tuple = field(default=())
    # Tian's own setup (docs/math.md §9-10); the defaults leave the paper's path untouched
    momentum: float = 0.9             # sgd only
    top_layer: str = "trained"        # or "ridge": V = (F^T F + lam I)^-1 F^T T in every training pass
    ridge_reg: float = 1e-3           # lam of the ridge top layer
    ridge_eval: str = "held"          # ridge: rows see the V held (his loop) or "current" = ridge(W)
    init_scale: float = 1.0           # alpha: multiplies the initial V
    output_scale: float = 1.0         # beta: Yhat = beta sigma(XW) V
    eta_schedule: tuple = field(default=())
    tail_rank: str = "M-1"            # r of the W_tail statistic: an integer, or M, M-c, M+c (tail_rank_of)
    group: str = ""                   # the task table: "" = Z_M (a + b mod M); else a tianref.groups spec
    group_digest: str = ""            # table: groups: the sha256 of the file's table when the run was made

    @property
    def tail_r(self) -> int:
        """The tail rank r as an integer (tail_rank resolved against M)."""
        return tail_rank_of(self.tail_rank, self.M)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["windows"] = list(self.windows)
        d["checkpoint_epochs"] = list(self.checkpoint_epochs)
        d["log_grams"] = list(self.log_grams)
        if self.top_layer != "ridge":
            del d["ridge_eval"]                   # meaningless without the ridge top layer
        if not self.group:
            del d["group"]                        # Z_M: the config.json of every run before --group
        if not self.group_digest:
            del d["group_digest"]                 # every group but a table: file's (and such runs made before it)
        if self.eta_schedule:
            d["eta_schedule"] = [[int(t), float(e)] for t, e in self.eta_schedule]
        else:
            del d["eta_schedule"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The config from a stored dict (config.json, a checkpoint); every value's type is checked
        against its field's default, so a hand-edited or corrupt file gives one clear InputError."""
        if not isinstance(d, dict):
            raise InputError(f"the stored config is not a JSON object (got {type(d).__name__})")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(names)
        if unknown:
            raise InputError(f"unknown config keys: {', '.join(sorted(map(str, unknown)))}")
        if d.get("top_layer") == "ridge" and "ridge_eval" not in d:
            d = dict(d, ridge_eval="current")     # written before the option: what those runs did
        return cls(**{k: _typed(k, v, names[k].default if names[k].default is not dataclasses.MISSING
                                 else names[k].default_factory()) for k, v in d.items()})

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


INT_TUPLES = ("windows", "checkpoint_epochs")     # tuple fields whose items are integers
INT64_MAX = 2 ** 63 - 1        # integers are stored as int64 (checkpoints: epoch, counts; numpy seeds)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _typed(name: str, v, default):
    """``v`` converted to the type of the field's default, or InputError naming the field."""
    def bad():
        shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:40] + f"... ({len(repr(v))} characters)"
        raise InputError(f"stored config: {name} = {shown} is not {what}")
    if name == "eta_schedule":
        what = "a list of [start, eta] pairs of an integer and a finite number"
        try:
            out = tuple((t, float(e)) for t, e in v)
        except (TypeError, ValueError, OverflowError):
            bad()
        if not all(_is_int(t) and math.isfinite(e) for t, e in out):
            bad()
        return out
    if name == "tail_rank" and isinstance(v, int) and not isinstance(v, bool):
        return str(v)                 # a hand-written integer rank
    if isinstance(default, bool):
        what = "true or false"
        return v if isinstance(v, bool) else bad()
    if isinstance(default, int):
        what = "an integer"
        return v if isinstance(v, int) and not isinstance(v, bool) else bad()
    if isinstance(default, float):
        what = "a finite number"
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            bad()
        try:
            x = float(v)                  # an integer beyond float's range: OverflowError
        except OverflowError:
            bad()
        return x if math.isfinite(x) else bad()
    if isinstance(default, str):
        what = "a string"
        return v if isinstance(v, str) else bad()
    if isinstance(default, tuple):
        what = "a list of integers" if name in INT_TUPLES else "a list"
        if not isinstance(v, (list, tuple)):
            bad()
        if name in INT_TUPLES and not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            bad()
        return tuple(v)
    return v


# settings that play a part in a run only beside another one (train refuses them given otherwise; runs made
# before may hold any value): setting -> (the setting, its value) under which it is used
USED_ONLY_WITH = {"momentum": ("optimizer", "sgd"), "ridge_reg": ("top_layer", "ridge")}


def idle_settings(config) -> set:
    """The USED_ONLY_WITH settings that play no part in this run, from a TrainConfig or a config dict (a key
    it lacks read at TrainConfig's default): no number of the run depends on their values."""
    get = config.get if isinstance(config, dict) else lambda k, d: getattr(config, k, d)
    return {k for k, (key, value) in USED_ONLY_WITH.items() if get(key, getattr(TrainConfig, key)) != value}


def validate(cfg: TrainConfig, read_files: bool = True) -> TrainConfig:
    """Raise InputError with a one-line message for the first invalid setting. ``read_files=False``: a
    table: group's file is not read (a reader of a run's log: the run is named by its settings, the
    file's table by group_digest; training, resuming and replaying it read the file and check both)."""
    def bad(msg):
        raise InputError(msg)

    for f in dataclasses.fields(cfg):             # every numeric field, present and future
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            bad(f"--{f.name.replace('_', '-')} must be a finite number (got {v})")

    for f in dataclasses.fields(cfg):             # every integer, alone or in a list: int64-sized
        v = getattr(cfg, f.name)
        for x in (v if f.name in INT_TUPLES else (v,)):
            if _is_int(x) and abs(x) > INT64_MAX:
                shown = x if x.bit_length() < 128 else f"(a {x.bit_length()}-bit integer)"
                bad(f"--{f.name.replace('_', '-')} {shown} is too large (the limit is 2^63 - 1)")

    if cfg.M < 2:
        bad(f"--M must be >= 2 (got {cfg.M})")
    if cfg.K < 2:
        bad(f"--K must be >= 2 (got {cfg.K}); the diagnostics need two hidden units")
    if not 2 <= cfg.n_train < cfg.M * cfg.M:
        bad(f"--n-train must be in [2, M^2 - 1] = [2, {cfg.M * cfg.M - 1}] (got {cfg.n_train}); "
            "the test set must not be empty")
    if not cfg.eta >= 0:
        bad(f"--eta must be >= 0 (got {cfg.eta})")
    if not cfg.lr > 0:
        bad(f"--lr must be > 0 (got {cfg.lr})")
    if not (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1):
        bad("Adam betas must lie in [0, 1)")
    if not cfg.eps > 0:
        bad(f"Adam eps must be > 0 (got {cfg.eps})")
    if cfg.epochs < 0:
        bad(f"--epochs must be >= 0 (got {cfg.epochs})")
    if cfg.seed < 0:
        bad(f"--seed must be >= 0 (got {cfg.seed})")
    if cfg.act not in ACTIVATIONS:
        bad(f"unknown activation {cfg.act!r}; choose one of {', '.join(ACTIVATIONS)}")
    if cfg.loss not in LOSSES:
        bad(f"unknown loss {cfg.loss!r}; choose one of {', '.join(LOSSES)}")
    if cfg.optimizer not in OPTIMIZERS:
        bad(f"unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cfg.dtype not in DTYPES:
        bad(f"unknown dtype {cfg.dtype!r}; choose one of {', '.join(DTYPES)}")
    if cfg.gram_dtype not in GRAM_MODES:
        bad(f"unknown Gram dtype {cfg.gram_dtype!r}; choose one of {', '.join(GRAM_MODES)}")
    for g in cfg.log_grams:
        if g not in GRAM_MODES[1:]:
            bad(f"--log-grams: unknown or main-only Gram {g!r}; choose from {', '.join(GRAM_MODES[1:])}")
    if len(set(cfg.log_grams)) != len(cfg.log_grams) or cfg.gram_dtype in cfg.log_grams:
        bad(f"--log-grams {','.join(cfg.log_grams)} repeats a Gram (main: --gram-dtype {cfg.gram_dtype})")
    if cfg.metrics not in METRIC_SETS:
        bad(f"unknown metric set {cfg.metrics!r}; choose one of {', '.join(METRIC_SETS)}")
    if not cfg.windows:
        bad("--windows needs at least one window")
    if len(set(cfg.windows)) != len(cfg.windows):
        bad(f"--windows has a repeated value: {list(cfg.windows)}")
    for w in cfg.windows:
        if w < 3:
            bad(f"every window must be >= 3 so that sigma2/sigma3 exists (got {w})")
    if not 0 <= cfg.momentum < 1:
        bad(f"--momentum must lie in [0, 1) (got {cfg.momentum})")
    if cfg.top_layer not in TOP_LAYERS:
        bad(f"unknown top layer {cfg.top_layer!r}; choose one of {', '.join(TOP_LAYERS)}")
    if cfg.ridge_eval not in RIDGE_EVALS:
        bad(f"unknown ridge evaluation {cfg.ridge_eval!r}; choose one of {', '.join(RIDGE_EVALS)}")
    if cfg.top_layer != "ridge" and cfg.ridge_eval != TrainConfig.ridge_eval:
        bad("--ridge-eval needs --top-layer ridge")
    if not cfg.ridge_reg > 0:
        bad(f"--ridge-reg must be > 0 (got {cfg.ridge_reg}); it keeps the ridge solve well posed")
    if not 0 <= cfg.init_scale < float("inf"):
        bad(f"--init-scale must be a finite number >= 0 (got {cfg.init_scale})")
    if not 0 < cfg.output_scale < float("inf"):
        bad(f"--output-scale must be a finite number > 0 (got {cfg.output_scale})")
    if cfg.top_layer == "ridge" and cfg.loss != "tian":
        bad("--top-layer ridge needs --loss tian (the MSE its solve minimises; Tian's code asserts the same)")
    if cfg.top_layer == "ridge" and cfg.output_scale != 1.0:
        bad("--top-layer ridge fits V to the targets itself; --output-scale must stay 1 with it")
    if cfg.tail_r < 1:               # r >= min(2M, K) is allowed: W_tail is then 0 (nothing outside)
        bad(f"--tail-rank {cfg.tail_rank} gives r = {cfg.tail_r}; it must be >= 1 (r = 0 is all of W)")
    if cfg.indep_pairs < 1:
        bad("indep_pairs must be >= 1")
    if cfg.group_digest and not cfg.group.startswith("table:"):
        bad(f"group_digest is recorded only for a table: group (the group is {cfg.group or 'Z_M'!r})")
    if cfg.group and (read_files or not cfg.group.startswith("table:")):
        from tianref.groups import table_digest, task_group
        G = task_group(cfg.group, cfg.M)          # order = M, and a group unless expr: (InputError)
        if cfg.group_digest and table_digest(G.table) != cfg.group_digest:
            bad(f"--group {cfg.group}: the file's table is not the one this run was made with (sha256 "
                f"{cfg.group_digest[:12]}... then, {table_digest(G.table)[:12]}... now); put that table back, "
                "or train a new run in another folder")
    if len(set(cfg.checkpoint_epochs)) != len(cfg.checkpoint_epochs):
        bad(f"--checkpoint-epochs has a repeated value: {list(cfg.checkpoint_epochs)}")
    for e in cfg.checkpoint_epochs:
        if not 0 <= e <= cfg.epochs:
            bad(f"checkpoint epoch {e} is outside [0, --epochs = {cfg.epochs}]")
    if cfg.eta_schedule:
        check_schedule(cfg.eta_schedule)
        if cfg.eta_schedule[0][1] != cfg.eta:
            bad(f"eta ({cfg.eta:g}) differs from the schedule's first value ({cfg.eta_schedule[0][1]:g})")
    return cfg


def tail_rank_of(text, M: int) -> int:
    """The tail rank r of ``text``: an integer ('22'), or relative to M ('M', 'M-1', 'M+3').
    InputError for anything else."""
    t = str(text).replace(" ", "")
    m = re.fullmatch(r"([0-9]+)|M(?:([+-])([0-9]+))?", t)       # ASCII digits (tianref/numtext.py)
    if m is None:
        raise InputError(f"--tail-rank {text!r}: expected an integer or M, M-c, M+c (e.g. 22, M-1)")
    if m.group(1) is not None:
        return int(m.group(1))
    c = int(m.group(3) or 0)
    return M - c if m.group(2) == "-" else M + c


def check_schedule(schedule) -> None:
    """InputError unless starts are ascending from 0 and every eta is finite and >= 0."""
    if not schedule:
        raise InputError("--eta-schedule needs at least one START:ETA entry")
    starts = [t for t, _ in schedule]
    if starts[0] != 0:
        raise InputError(f"--eta-schedule must start at epoch 0 (first start is {starts[0]})")
    for a, b in zip(starts, starts[1:]):
        if not b > a:
            raise InputError(f"--eta-schedule starts must be strictly ascending (got {a} then {b})")
    for t, e in schedule:
        if not (math.isfinite(e) and e >= 0):
            raise InputError(f"--eta-schedule value at {t} must be finite and >= 0 (got {e})")


def parse_eta_schedule(text: str) -> tuple:
    """'0:2e-4,250:0' -> ((0, 2e-4), (250, 0.0)), validated; a clear InputError otherwise."""
    out = []
    for item in parse_list(text, "--eta-schedule", str,    # the one list parser: an empty item is refused
                           nouns=("a START:ETA entry", "START:ETA entries")):
        start, sep, value = item.partition(":")
        try:
            if not sep:
                raise ValueError
            out.append((parse_int(start), parse_float(value) + 0.0))     # + 0.0: -0 is 0 (json keeps -0.0)
        except ValueError:
            raise InputError(f"--eta-schedule entries must be START:ETA, e.g. 0:2e-4,250:0 "
                             f"(got {item.strip()!r})") from None
    check_schedule(tuple(out))
    return tuple(out)


def eta_at(cfg: TrainConfig, t: int) -> float:
    """The weight decay of the step from row t to row t + 1."""
    return eta_in_force(cfg.eta, cfg.eta_schedule, t)


def eta_in_force(eta: float, schedule, t: int) -> float:
    """``eta`` under an ascending schedule ((start, eta), ...): the value of the last start <= t."""
    for start, value in schedule:
        if start <= t:
            eta = value
        else:
            break
    return eta


def parse_list(text: str, what: str, kind=int, nouns=None) -> tuple:
    """The one parser of comma-separated option values: '5,10,20' -> (5, 10, 20).

    ``kind`` is int, float or str. Empty text gives (); an empty item ('5,,10', '5,'), an item that
    is not a ``kind`` as tianref/numtext.py reads it (ASCII digits), or a non-finite float is an
    InputError naming the option and the item. ``nouns`` = (one, many) names the items in those
    messages (default: by ``kind``).
    """
    if text is None or str(text).strip() == "":
        return ()
    many = nouns[1] if nouns else {int: "integers", float: "numbers", str: "names"}[kind]
    head = f"{what} {text!r}: expected comma-separated {many};"
    out = []
    for i, item in enumerate(str(text).split(",")):
        item = item.strip()
        if item == "":
            raise InputError(f"{head} item {i + 1} is empty")
        try:
            v = item if kind is str else parse_number(item, kind)     # ASCII digits only (numtext)
        except ValueError as exc:
            raise InputError(f"{head} {exc}") from None
        if kind is float and not math.isfinite(v):
            raise InputError(f"{head} {item!r} is not finite")
        out.append(v + 0.0 if kind is float else v)    # -0 is 0: one condition, one folder name
    return tuple(out)


def parse_int_list(text: str, what: str) -> tuple:
    """'5,10,20' -> (5, 10, 20); see parse_list."""
    return parse_list(text, what, int)
