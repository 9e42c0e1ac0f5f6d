"""The reproduce sections, one module each, and their registry.

References: docs/reproduce.md ("A section is one module"), :mod:`tianref.experiments.reproduce.section`
(the protocol each module's ``SECTION`` implements).

    REGISTRY   {name: SECTION} in the order of ``tianref.experiments.protocols.SECTIONS``

The paper's sections: headline, relu, window, eta, thm6, extended; Tian's: scaling, critical, muon, ridge;
the two other seed papers': lifecycle, clocks; any finite group: groups. A new section is a module here defining ``SECTION`` (an
instance of a :class:`~tianref.experiments.reproduce.section.Section` subclass), its name added to
``protocols.SECTIONS`` and its import below.
"""
from __future__ import annotations

from tianref.experiments import protocols
from tianref.experiments.reproduce.sections import (
    clocks,
    critical,
    eta,
    extended,
    groups,
    headline,
    lifecycle,
    muon,
    relu,
    ridge,
    scaling,
    thm6,
    window,
)

_MODULES = {m.SECTION.name: m for m in (headline, relu, window, eta, thm6, extended, scaling, critical, muon,
                                        ridge, lifecycle, clocks, groups)}
REGISTRY = {name: _MODULES[name].SECTION for name in protocols.SECTIONS}
