"""The e2e lab, shared by the test files of this folder in the order pytest runs them: site.yml's day on the lab
inventory (test_site.py), then the day-one replica of the production inventory (test_site_day_one.py), then the
runner VM replaced on the prepared base (test_site_replace.py)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import base_cache
import pytest
from lablib.shell import LAB, sh
from site_lab import HOST, INSTANCES, OUTPUT, TIMINGS, Site, admin_forge, lab_from_nothing, lab_up


@pytest.fixture(scope="session")
def lab():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in INSTANCES.items():
            patch.setenv(name, value)
        # From nothing, unless E2E_REUSE=1 (while developing): then the converged lab is kept, and left running.
        seeded = None
        reuse = bool(os.environ.get("E2E_REUSE"))
        if reuse:
            env = lab_up()
            forge = admin_forge(env)
        else:
            env, forge = lab_from_nothing()
            seeded = base_cache.seed(env)
        site = Site(env)
        site.store_forge_tokens()
        yield SimpleNamespace(env=env, site=site, forge=forge, seeded_base=seeded)
        if not reuse:  # the runner VM's emulation would take CPU from the parts that run after this one
            sh(str(LAB / "kvm-host"), "down", HOST, check=False)
    (OUTPUT / "timings.json").write_text(json.dumps(TIMINGS, indent=2))
    print("\ne2e timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in TIMINGS.items()))
