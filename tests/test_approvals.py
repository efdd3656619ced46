"""Approvals: `Approved-by:` trailers of the merge commit, plus the forge's reviews the CI job writes to a file."""

from __future__ import annotations

import json

import pytest

from rlops.errors import RlopsError
from rlops.registry.promote import count_approvals

MERGE = "Merge pull request #7 from team/cycle/0002-tone\n\nApproved-by: bob\nApproved-by: carol\nApproved-by: bob\n"


def test_trailers_count_once_per_person():
    assert count_approvals(MERGE, None) == ["bob", "carol"]
    assert count_approvals("Merge branch 'x'\n", None) == []


def test_rlops_format_and_githubs_review_list(tmp_path):
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"pull_request": 7, "approvals": [{"login": "dave", "state": "APPROVED"}]}))
    assert count_approvals(MERGE, ours) == ["bob", "carol", "dave"]
    github = tmp_path / "github.json"  # GET /repos/{o}/{r}/pulls/{n}/reviews, oldest first
    github.write_text(json.dumps([
        {"user": {"login": "erin"}, "state": "APPROVED"},
        {"user": {"login": "frank"}, "state": "APPROVED"},
        {"user": {"login": "frank"}, "state": "CHANGES_REQUESTED"},  # a later review replaces the approval
        {"user": {"login": "erin"}, "state": "COMMENTED"},  # a comment does not withdraw it, as on GitHub
    ]))
    assert count_approvals("Merge\n", github) == ["erin"]


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "approvals.json"
    bad.write_text("{not json")
    with pytest.raises(RlopsError, match="approvals.json: cannot read the approvals file"):
        count_approvals(MERGE, bad)
