"""The fixed vocabulary of PRODUCT.md §1 as Django choices."""

from __future__ import annotations

from django.db import models


class Stage(models.TextChoices):
    PROTOTYPE = "prototype"
    PILOT = "pilot"
    PRODUCTION = "production"
    RETIRED = "retired"


class RiskTier(models.TextChoices):
    MINIMAL = "minimal"
    LIMITED = "limited"
    HIGH = "high"
    PROHIBITED = "prohibited"


class Dimension(models.TextChoices):
    DATA_SCIENCE = "data_science", "Data science"
    ENGINEERING = "engineering", "Engineering"
    PRODUCT = "product", "Product"
    SECURITY = "security", "Security"


# The stakeholder and default definition of done of each dimension (PRODUCT.md §1 table).
DIMENSION_DEFINITIONS: dict[str, tuple[str, str]] = {
    "data_science": (
        "Data science lead",
        "The model achieves its target quality on held-out data and in production.",
    ),
    "engineering": (
        "Engineering lead",
        "The system handles production traffic within its SLOs (99.9% availability by default).",
    ),
    "product": (
        "Product manager",
        "Users can reach the feature in the product, and its success metric is defined and tracked.",
    ),
    "security": (
        "CISO / security delegate",
        "The system meets compliance and security requirements for its risk tier.",
    ),
}


def choices_check(field: str, choices: type[models.TextChoices]) -> models.Q:
    """A Q for a CheckConstraint that keeps an enum column inside its choices at the database level."""
    return models.Q(**{f"{field}__in": choices.values})
