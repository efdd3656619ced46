"""Extract: production logs and feedback become preference pairs for training.

`run.run(params, root, out_dir)` is the stage: `params.ExtractParams` reads its settings once,
`records` loads and validates the logs (malformed lines are quarantined, never lost), `rules`
turns edits, A/B choices and ratings into pairs, `filters` drops contaminated and duplicate
pairs, and `report` accounts for every feedback event.
"""
