"""The audit trail: the hash-chained ledger, signature checks, offline verification and reports. Imports nothing heavy."""
