"""forgejo_runner_prune at scale on the lab's Gitea: hundreds of offline registrations, some back online mid-run.

The runners are registered through the runner protocol in a new organisation `prunetest-*` (deleted at the
end) and never call again, so the forge lists them offline. Some are made to call (Declare) before the prune
starts, and some more once the prune has begun deleting: no runner that was online when the module came to it
may be deleted.
"""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from fleet import Fleet

ORG = "prunetest"
COUNT = 600
STEADY = [10, 150, 250, 599]  # online before the prune starts
REVIVED = list(range(520, 599, 4))  # brought online once deletions have begun; the module reaches them last


@pytest.fixture
def fleet(lab):
    if not lab.get("FORGE_GITEA_URL"):
        pytest.skip("the lab's Gitea is not running (tests/lab/forge up)")
    fleet = Fleet(lab["FORGE_GITEA_URL"], lab["FORGE_GITEA_TOKEN_ORG"], f"{ORG}-{secrets.token_hex(3)}")
    fleet.create_org()
    yield fleet
    fleet.delete_org()


@pytest.fixture
def registered(fleet):
    run = f"pit-{secrets.token_hex(3)}"
    return run, fleet.register([f"{run}-{i:04d}" for i in range(COUNT)], labels=("prunetest",))


def names_left(fleet: Fleet, run: str) -> set[str]:
    return {r["name"] for r in fleet.list() if r["name"].startswith(run)}


def test_prune_at_scale_keeps_runners_that_come_back_online(lab, fleet, registered, ansible):
    run, runners = registered
    args = {"api_url": fleet.url, "api_token": lab["FORGE_GITEA_TOKEN_ORG"], "scope": "org", "org": fleet.org}
    args |= {"names": [f"{run}-*"], "labels": ["prunetest"]}
    assert all(fleet.declare(runners[i]) for i in STEADY)
    steady = {runners[i]["name"] for i in STEADY}

    capped = ansible("forgejo_runner_prune", {**args, "max_deletions": COUNT - len(STEADY) - 1})
    assert capped["failed"] and "nothing was deleted" in capped["msg"]
    assert len(names_left(fleet, run)) == COUNT, "the max_deletions cap let a deletion through"

    args["max_deletions"] = COUNT
    checked = ansible("forgejo_runner_prune", args, check=True)
    assert checked["changed"] and len(checked["pruned"]) == COUNT - len(STEADY)
    assert len(names_left(fleet, run)) == COUNT, "check mode deleted runners"

    reviving = [runners[i] for i in REVIVED]
    outcome: dict = {}
    prune = threading.Thread(target=lambda: outcome.update(ansible("forgejo_runner_prune", args)))
    start = time.monotonic()
    prune.start()
    while len(names_left(fleet, run)) == COUNT and prune.is_alive():
        time.sleep(0.02)
    began = time.monotonic() - start
    revived = {r["name"] for r, ok in zip(reviving, fleet.each(fleet.declare, reviving), strict=True) if ok}
    revived_at = time.monotonic() - start
    prune.join(120)
    print(f"deletions seen after {began:.2f} s; {len(revived)} of {len(REVIVED)} revived by {revived_at:.2f} s; "
          f"prune done after {time.monotonic() - start:.2f} s")  # fmt: skip

    assert not outcome.get("failed"), outcome.get("msg")
    assert len(revived) == len(REVIVED), "the prune reached runners before they could be brought back online"
    left = names_left(fleet, run)
    assert steady | revived <= left, f"online runners were deleted: {sorted((steady | revived) - left)}"
    assert left == steady | revived
    kept = {r["name"]: r["status"] for r in outcome["kept_online"]}
    assert set(kept) == steady | revived and set(kept.values()) == {"idle"}
    assert outcome["changed"] and len(outcome["pruned"]) == COUNT - len(left)

    for check in (False, True):
        again = ansible("forgejo_runner_prune", args, check=check)
        assert not again["changed"] and again["pruned"] == []
    assert names_left(fleet, run) == left
