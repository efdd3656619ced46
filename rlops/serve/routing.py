"""Which version answers a request: production, a sticky canary for a declared fraction of users, and a shadow.

A user is put in the canary when `bucket(policy, user) < canary.fraction`, where the bucket is the first 8 bytes of
SHA-256("<policy>:<user>") read as a number in [0, 1). The same user always lands in the same bucket, so a user stays
in (or out of) the canary across requests, restarts and replicas; raising the fraction only adds users. A request
without a user key (neither the body's `user` nor the `X-Rlops-User` header) is served by production: it cannot be
kept sticky. The shadow, when declared, answers every request in the background; its answer is logged, never returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rlops.registry.manifest import Manifest

USER_HEADER = "X-Rlops-User"


def bucket(policy: str, user: str) -> float:
    """A number in [0, 1) fixed by the policy and the user key."""
    digest = hashlib.sha256(f"{policy}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class Route:
    version: str  # answers the request
    stage: str  # production or canary
    shadow: str | None  # answers the same request in the background, or None


def route(manifest: Manifest, user: str | None) -> Route:
    """The route of one request by `user` (None: no user key) under `manifest`."""
    if manifest.canary and manifest.canary_fraction and user is not None:
        if bucket(manifest.policy, user) < manifest.canary_fraction:
            return Route(manifest.canary, "canary", manifest.shadow)
    return Route(manifest.production, "production", manifest.shadow)
