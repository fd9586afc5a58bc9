"""Hypothesis profiles for the whole workspace (the property tests under libs/ and services/).

`default` keeps `make test` quick; `HYPOTHESIS_PROFILE=slow` runs ten times the examples. No
deadline and no too-slow health check in either: the machines that run the suite are shared, and
a slow example is not a failure. Tests that set their own `max_examples` keep it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_shared_machine = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

settings.register_profile("default", _shared_machine, max_examples=200)
settings.register_profile("slow", _shared_machine, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
