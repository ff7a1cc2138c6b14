"""Tables, plots, reports and the deep-vs-SIFT similarity analysis over results and stored features.

similarity / similarity_study / similarity_figure / similarity_app: the deep-vs-SIFT study
(``deepagg-similarity``); tables, paper, plots, examples, report: results of runs and sweeps
(``deepagg-report``). See docs/analysis.md.
"""
