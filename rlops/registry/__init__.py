"""Deployment manifests, registered versions, proposals, promotion, rollback and tags. Imports nothing heavy."""
