"""Where `coord init --from`'s URLs are cloned (coordination.fleet.clones): one name per
repository, same-named repositories told apart, two spellings of one cloned once."""

from __future__ import annotations

import pytest

from coordination.errors import UsageError
from coordination.fleet import clones

pytestmark = pytest.mark.timeout(30)


def test_a_clone_is_named_after_its_url_last_part() -> None:
    assert clones.names(["git@example.com:acme/jobs.git",
                         "https://example.com/acme/web.git/"]) == {
        "git@example.com:acme/jobs.git": "jobs", "https://example.com/acme/web.git/": "web"}


def test_two_repositories_of_one_name_get_their_owners_in_theirs() -> None:
    a, b = "https://git.example.com/org-a/utils.git", "git@git.example.com:org-b/utils"
    assert clones.names([a, b, "https://git.example.com/org-a/web"]) == {
        a: "org-a-utils", b: "org-b-utils", "https://git.example.com/org-a/web": "web"}
    # only the host tells them apart
    gh, gl = "https://github.com/acme/utils", "https://gitlab.com/acme/utils"
    assert clones.names([gh, gl]) == {gh: "github.com-acme-utils", gl: "gitlab.com-acme-utils"}
    # deeper paths: as many parts as it takes
    x, y = "https://h/g1/team/utils", "https://h/g2/team/utils"
    assert clones.names([x, y]) == {x: "g1-team-utils", y: "g2-team-utils"}


def test_two_spellings_of_one_repository_are_one_clone() -> None:
    ssh, https = "git@GitHub.com:acme/utils.git", "https://tok@github.com/acme/utils/"
    assert clones.identity(ssh) == clones.identity(https) == ("github.com", "acme/utils")
    assert clones.names([ssh, https]) == {ssh: "utils", https: "utils"}
    assert clones.identity("file:///srv/git/lib.git") == ("", "srv/git/lib")


def test_a_made_name_that_is_another_urls_is_refused() -> None:
    with pytest.raises(UsageError) as err:
        clones.names(["https://h/org-a/utils", "https://h/org-b/utils",
                      "https://h/x/org-a-utils"])
    assert err.value.exit_code == 2
    assert "https://h/org-a/utils and https://h/x/org-a-utils would both be cloned as " \
        "org-a-utils" in err.value.message
