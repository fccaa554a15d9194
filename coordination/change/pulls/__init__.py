"""A change's pull requests: what ``land: pr`` and ``coord change publish`` do at a
forge (ARCHITECTURE.md, ``change/pulls/``).

    forges.py        ChangeForges: each repo's forge client, made once
    forge_status.py  PullView: a pull request as its forge said it; the rule's forge blockers
    forge_events.py  a verified webhook event into the kept views
    publish.py       ``coord change publish``: branch pushed, PR found or opened once
    pull_body.py     a PR's title and body (pure)
    pull_landing.py  land: pr's commit step (merge_one, stop)
    pull_revert.py   ``coord change revert`` of land: pr
    merge_settings.py  what each repo's forge would refuse, read before anything merges
    abandon.py       ``coord change abandon``: PRs closed, coord's branches deleted
"""
