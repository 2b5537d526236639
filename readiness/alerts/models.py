"""Where a project's notifications go: email addresses or a webhook (PRODUCT.md §4)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Channel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # webhook: the URL; email: unused (see ``to``).
    url = models.URLField(max_length=500, blank=True)
    to = models.JSONField(default=list, blank=True)  # email recipients
    enabled = models.BooleanField(default=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "kind", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["email", "webhook"]), name="channel_kind_valid"),
        ]

    def __str__(self) -> str:
        target = self.url if self.kind == self.Kind.WEBHOOK else ", ".join(self.to)
        return f"{self.kind}: {target}"
