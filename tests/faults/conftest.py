"""The fault suite runs the same real system as the e2e suite (one per module)."""

from ..e2e.conftest import ICIMS_CUSTOMER, ICIMS_ORG, RunningStack, system

__all__ = ["ICIMS_CUSTOMER", "ICIMS_ORG", "RunningStack", "system"]
