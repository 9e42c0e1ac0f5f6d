"""Experiments: the paper's protocols as data, sweeps of runs, and the section-by-section reproduction.

Data flows down the list; nothing reaches back up:
    protocols.py  the paper's run specifications (RunSpec) per section
    sweep.py      conditions x seeds -> one tree of train runs (resumable, parallel, --plan)
    reproduce/    every section through one protocol: run, measure, claims beside their sources, report, store
"""
