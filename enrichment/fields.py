"""The enrichable fields: which record holds each one, and how long its values stay fresh.

Field names are unique across leads and companies so an Observation needs no entity tag.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings


class Entity(StrEnum):
    LEAD = "lead"
    COMPANY = "company"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    entity: Entity
    column: str
    label: str
    # Freshness in days; None means the ENRICHMENT_FRESHNESS_DAYS default.
    freshness_days: int | None = None
    accept_threshold: float = 0.80
    review_floor: float = 0.50

    @property
    def fresh_for_days(self) -> int:
        return self.freshness_days or settings.ENRICHMENT_FRESHNESS_DAYS


# Thresholds follow the seed article's accuracy table: email is outreach-critical and
# arrives verified, so it needs more to be applied; titles and technographics are softer.
FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        # An address's verification goes stale first (mailboxes close, people leave): 30 days.
        FieldSpec(
            "email",
            Entity.LEAD,
            "email",
            "Email",
            freshness_days=30,
            accept_threshold=0.90,
            review_floor=0.60,
        ),
        FieldSpec("phone", Entity.LEAD, "phone", "Phone", accept_threshold=0.85),
        FieldSpec(
            "job_title",
            Entity.LEAD,
            "job_title",
            "Job title",
            accept_threshold=0.75,
            review_floor=0.45,
        ),
        FieldSpec(
            "seniority",
            Entity.LEAD,
            "seniority",
            "Seniority",
            accept_threshold=0.75,
            review_floor=0.45,
        ),
        FieldSpec(
            "department",
            Entity.LEAD,
            "department",
            "Department",
            accept_threshold=0.75,
            review_floor=0.45,
        ),
        FieldSpec("linkedin_url", Entity.LEAD, "linkedin_url", "LinkedIn URL", freshness_days=180),
        FieldSpec(
            "location",
            Entity.LEAD,
            "location",
            "Location",
            accept_threshold=0.70,
            review_floor=0.40,
        ),
        FieldSpec(
            "company_name",
            Entity.COMPANY,
            "name",
            "Company name",
            freshness_days=180,
            accept_threshold=0.75,
        ),
        FieldSpec(
            "industry",
            Entity.COMPANY,
            "industry",
            "Industry",
            freshness_days=180,
            accept_threshold=0.70,
            review_floor=0.40,
        ),
        FieldSpec(
            "employee_range",
            Entity.COMPANY,
            "employee_range",
            "Employees",
            accept_threshold=0.70,
            review_floor=0.40,
        ),
        FieldSpec(
            "revenue_range",
            Entity.COMPANY,
            "revenue_range",
            "Revenue",
            accept_threshold=0.70,
            review_floor=0.40,
        ),
        FieldSpec(
            "hq_location",
            Entity.COMPANY,
            "hq_location",
            "HQ location",
            freshness_days=180,
            accept_threshold=0.70,
            review_floor=0.40,
        ),
        FieldSpec(
            "technologies",
            Entity.COMPANY,
            "technologies",
            "Technologies",
            accept_threshold=0.60,
            review_floor=0.35,
        ),
    ]
}

LEAD_FIELDS = [name for name, spec in FIELDS.items() if spec.entity is Entity.LEAD]
COMPANY_FIELDS = [name for name, spec in FIELDS.items() if spec.entity is Entity.COMPANY]
FIELD_CHOICES = [(name, spec.label) for name, spec in FIELDS.items()]
