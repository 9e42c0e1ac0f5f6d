"""Reading runs back and measuring them.

Data flows down the list; nothing reaches back up:
    records.py    metrics.jsonl + config.json -> RunRecord (columns by epoch); trees of runs
    detectors.py  the paper's statistics on one run's columns (pure functions of arrays)
    clock_events.py  the two clocks and the two-clocks outcome of one run's columns
    conditions.py    runs -> conditions (config minus seed) and their eta = 0 controls
    summary_markdown.py, summary_io.py   a summary as Markdown tables; as strict JSON, written atomically
    summarize.py  conditions x seeds -> medians, IQRs, fire epochs, clock outcomes (re-exports the above)
    plots.py      the paper's run figures (headline, activation, window, top-5 spectrum)
"""
