"""Unlocking logins in the admin console: "Unlock login" on users (a person locked out of their
account), "Unlock these addresses" on access attempts (an address locked for too many failures across
usernames, e.g. a shared office address). Both go through the audited services of logins.py."""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from readiness.security.logins import address_unlock, login_unlock

User = get_user_model()


class ReadinessUserAdmin(UserAdmin):
    actions = ["unlock_login"]

    @admin.action(description="Unlock login", permissions=["change"])
    def unlock_login(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            cleared = login_unlock(user=user, by=request.user)
            self.message_user(
                request,
                f"{user.get_username()}: login unlocked ({cleared} failed attempts cleared)."
                if cleared
                else f"{user.get_username()}: was not locked out.",
                messages.SUCCESS if cleared else messages.INFO,
            )


class ReadinessAccessAttemptAdmin(AccessAttemptAdmin):
    actions = [*AccessAttemptAdmin.actions, "unlock_addresses"]

    @admin.action(description="Unlock these addresses (every username)", permissions=["delete"])
    def unlock_addresses(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        addresses = sorted({a for a in queryset.values_list("ip_address", flat=True) if a})
        for address in addresses:
            cleared = address_unlock(address=address, by=request.user)
            self.message_user(
                request, f"{address}: logins unlocked ({cleared} failed attempts cleared).", messages.SUCCESS
            )


admin.site.unregister(User)
admin.site.register(User, ReadinessUserAdmin)
admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, ReadinessAccessAttemptAdmin)
