"""Giving people their role."""

from django.contrib.auth.models import Group

from accounts.roles import ROLES, STAFF_ROLES


def user_role_set(*, user, role: str) -> None:
    """Make `role` the user's only role; Reviewers and Admins get staff status (the admin)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = role in STAFF_ROLES
    user.save(update_fields=["is_staff"])
