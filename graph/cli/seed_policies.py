"""The service-level policies a demo support team starts with (``support-graph seed``)."""

from __future__ import annotations

from typing import Any

from models.service_levels import SlaPolicy
from resolvers.unit import UnitOfWork

_WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")
OFFICE = {
    "timezone": "Europe/Berlin",
    "days": [{"weekday": day, "start": start, "end": end} for day in _WEEKDAYS
             for start, end in (("08:00", "12:30"), ("13:30", "18:00"))],
    "holidays": ["2026-12-24", "2026-12-25", "2026-12-26", "2026-12-31", "2027-01-01"],
}  # fmt: skip
HOUR = 3600

#: name, position and the rest of each policy: urgent enterprise work around the clock, the
#: rest in office hours, chat faster than email
POLICIES: list[dict[str, Any]] = [
    {"name": "Enterprise urgent (24/7)", "position": 1, "priorities": ["URGENT"], "organization_tiers": ["ENTERPRISE"],
     "first_response_seconds": HOUR, "resolution_seconds": 8 * HOUR},
    {"name": "High priority", "position": 2, "priorities": ["HIGH", "URGENT"],
     "first_response_seconds": 2 * HOUR, "resolution_seconds": 16 * HOUR, "business_hours": OFFICE},
    {"name": "Chat", "position": 3, "channels": ["CHAT"],
     "first_response_seconds": 15 * 60, "resolution_seconds": 8 * HOUR, "business_hours": OFFICE},
    {"name": "Standard", "position": 10,
     "first_response_seconds": 8 * HOUR, "resolution_seconds": 40 * HOUR, "business_hours": OFFICE},
]  # fmt: skip


async def create_policies(uow: UnitOfWork) -> int:
    """Add the demo policies to the unit's tenant; how many."""
    for values in POLICIES:
        await uow.create(SlaPolicy, values)
    return len(POLICIES)
