"""Promotion: the operations that change what serves, each through a pull request whose signed merge makes it so.

`propose` (a candidate's evidence, its new registry version and manifest), `promote` (record a merged proposal in the
ledger and tag it), `rollback` (a return to an earlier version), `trustroots` (a change of who may sign and approve).

Layering: `rlops.promotion` -> `rlops.audit` -> `rlops.registry`. The registry (versions, manifests, tags, the
evidence a version carries) imports neither; the audit (ledger, signatures, trust, the checks of one merge, verify,
report) reads the registry; promotion writes both. tests/test_boundaries.py keeps it so.
"""
