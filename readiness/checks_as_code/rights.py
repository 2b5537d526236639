"""What an import may do, beyond the file being valid: who may run one, and what no file may change.

A checks-as-code file creates users, sets team membership (which grants reading a team's projects) and
names the people who sign off and approve waivers: an admin's power. So only an active staff user or the
command line (whoever runs manage.py already holds the database's credentials) may import, and even
they may not rewrite a superuser's email or name through a file: the email is where a password reset
goes, so a file changing it would hand the superuser account to whoever reads that mailbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

from readiness.checks_as_code.checkers import Problems, at, shown

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from readiness.checks_as_code.plan import UserPlan


def import_allowed(actor: AbstractBaseUser | None) -> bool:
    """``None`` is the command line."""
    return actor is None or bool(actor.is_active and actor.is_staff)


def superusers_unchanged(problems: Problems, users: list[UserPlan]) -> None:
    """A problem at ``users[i].email`` / ``users[i].name`` for each change the file would make to an
    existing superuser; the superuser changes them in the admin console."""
    model = get_user_model()
    superusers = {
        user.get_username(): user
        for user in model.objects.filter(
            is_superuser=True, **{f"{model.USERNAME_FIELD}__in": [plan.username for plan in users]}
        )
    }
    for plan in users:
        user = superusers.get(plan.username)
        if user is None:
            continue
        if plan.email is not None and plan.email != user.email:
            problems.add(
                at(plan.path, "email"),
                f"{shown(plan.username)} is a superuser: a file may not change a superuser's email "
                f"(from {shown(user.email)}); change it in the admin console",
            )
        if plan.name is not None and plan.name != user.get_full_name():
            problems.add(
                at(plan.path, "name"),
                f"{shown(plan.username)} is a superuser: a file may not change a superuser's name "
                f"(from {shown(user.get_full_name())}); change it in the admin console",
            )
