"""`rlops promote`'s argument and its "nothing to do" answer, in a real git repository (a real process each)."""

from __future__ import annotations

from conftest import run


def test_nothing_to_promote_is_said_in_plain_words(project):
    repo, env = project
    p = run(["rlops", "promote"], repo, env)
    assert p.stdout.strip() == ("rlops promote: nothing to promote: every merged proposal on this branch is recorded "
                                "already")
    p = run(["rlops", "promote", "HEAD"], repo, env)
    assert "nothing to promote: HEAD does not merge a proposal" in p.stdout, p.stdout
    assert "lands no" not in p.stdout


def test_a_branch_or_a_name_that_is_no_commit_is_a_usage_error_exit_2(project):
    repo, env = project
    run(["git", "checkout", "-q", "-b", "cycle/0001-damaged-orders"], repo, env)
    (repo / "notes.txt").write_text("a proposal's commit\n")
    run(["git", "add", "notes.txt"], repo, env)
    run(["git", "commit", "-q", "-m", "proposal"], repo, env)
    run(["git", "checkout", "-q", "main"], repo, env)

    p = run(["rlops", "promote", "cycle/0001-damaged-orders"], repo, env, check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert ("the branch 'cycle/0001-damaged-orders' is not on the first-parent history of main" in p.stderr
            and "merge the pull request first" in p.stderr and "git log --first-parent --merges" in p.stderr), p.stderr
    p = run(["rlops", "promote", "no-such-thing"], repo, env, check=False)
    assert p.returncode == 2 and "'no-such-thing' names no commit in this repository" in p.stderr, p.stderr
    for out in (p.stdout, p.stderr):
        assert "Traceback" not in out and "unexpected error" not in out
