"""Reading runs back and measuring them.

Data flows down the list; nothing reaches back up:
    records.py    metrics.jsonl + config.json -> RunRecord (columns by epoch); trees of runs
    detectors.py  the paper's statistics on one run's columns (pure functions of arrays)
    summarize.py  conditions x seeds -> medians, IQRs, fire epochs; JSON and Markdown
    plots.py      the paper's run figures (headline, activation, window, top-5 spectrum)
"""
