"""`model.source: hub`: a parent from the Hugging Face Hub, pinned to a commit, read through huggingface_hub's cache.

The cache is huggingface_hub's own (`HF_HUB_CACHE`, else `HF_HOME/hub`, else ~/.cache/huggingface/hub; the layout
`models--ORG--NAME/snapshots/<commit>/`, `refs/<branch>`), so a runner that pre-fills it (or a CI cache step) needs
no network: with `HF_HUB_OFFLINE=1` nothing is downloaded and a missing snapshot is an error that says how to get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlops import settings
from rlops.errors import InvalidInput, StageFailed


def hub_settings(m: dict[str, Any]) -> settings.HubModelSettings:
    """params.yaml's `model` section for `source: hub`, typed; every problem at once, by field."""
    typed, problems = settings.check(settings.HubModelSettings, m, "params.yaml", "model")
    if problems:
        raise InvalidInput(problems, hint="fix pipelines/conf/model/<name>.yaml and run `rlops plan` again")
    return typed


def snapshot(m: dict[str, Any]) -> Path:
    """The local folder of the pinned snapshot (downloaded into the cache first unless HF_HUB_OFFLINE=1)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    s = hub_settings(m)
    try:
        return Path(snapshot_download(repo_id=s.repo_id, revision=s.revision))
    except LocalEntryNotFoundError:
        raise StageFailed(
            f"{s.repo_id} at revision {s.revision} is not in the Hugging Face cache, and the hub cannot be reached "
            "(or HF_HUB_OFFLINE=1)",
            hint=f"where the hub is reachable: `hf download {s.repo_id} --revision {s.revision}` (set HF_HOME or "
                 "HF_HUB_CACHE to the cache the train runner reads), or unset HF_HUB_OFFLINE") from None
    except HfHubHTTPError as e:
        raise StageFailed(f"the Hugging Face Hub refused {s.repo_id} at {s.revision}: {e}",
                          hint="check the id and the revision, and HF_TOKEN for a gated or private model") from None
