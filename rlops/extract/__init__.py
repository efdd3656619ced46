"""Extract: production logs and feedback become training data (TRL formats), in DuckDB.

`run.run(params, root, out_dir)` is the stage. `params.ExtractParams` reads its settings once; `engine` finds
and scans the logs (JSONL or Parquet, files, folders or globs); `load` checks every record and quarantines what
cannot be used, with file, line and reason; `filters` applies the window, version and per-user filters, PII
redaction (`pii`) and decontamination, and removes duplicates; `rules` turns each kind of feedback into rows
(pairs, unpaired, sft, rewards), `rlaif` asks a judge (`judges`); `report` accounts for every record read.
"""
