"""Permissions held per process until an admin changes them.

Django's ModelBackend asks the database twice on every signed-in request that checks a
permission (the user's own, then their groups'), for rows that change only when an admin
gives someone a role. Here they are held like the other hand-edited tables
(common.cached_tables): who is in which group, what each group may do, and what each
user was given directly. A change (a role given, a group's permissions edited, a group
deleted) reaches every process within a second.

`is_active` and `is_superuser` come from the user row each request reads anyway.
"""

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from common.cached_tables import CachedTable, cached_tables_changed

User = get_user_model()


def _held_by(pairs) -> dict[int, frozenset]:
    """(owner, item) pairs as each owner's items."""
    held: dict[int, set] = defaultdict(set)
    for owner, item in pairs:
        held[owner].add(item)
    return {owner: frozenset(items) for owner, items in held.items()}


def _named(rows):
    """(owner, app label, codename) rows as (owner, "app_label.codename") pairs."""
    return ((owner, f"{app_label}.{codename}") for owner, app_label, codename in rows)


_ALL = CachedTable(
    "auth_permissions_all",
    models=(Permission,),
    load=lambda: frozenset(
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list(
            "content_type__app_label", "codename"
        )
    ),
)
_BY_GROUP = CachedTable(
    "auth_permissions_by_group",
    models=(Group, Permission),
    load=lambda: _held_by(
        _named(
            Group.permissions.through.objects.values_list(
                "group_id", "permission__content_type__app_label", "permission__codename"
            )
        )
    ),
)
_GROUPS_BY_USER = CachedTable(
    "auth_groups_by_user",
    models=(Group,),
    load=lambda: _held_by(User.groups.through.objects.values_list("user_id", "group_id")),
)
_BY_USER = CachedTable(
    "auth_permissions_by_user",
    models=(Permission,),
    load=lambda: _held_by(
        _named(
            User.user_permissions.through.objects.values_list(
                "user_id", "permission__content_type__app_label", "permission__codename"
            )
        )
    ),
)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="accounts.groups_changed")
@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="accounts.perms_changed")
@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="accounts.group_changed")
def _memberships_changed(sender, action: str, **kwargs) -> None:
    if action.startswith("post_"):
        cached_tables_changed()


class CachedPermissionsBackend(ModelBackend):
    """ModelBackend (sign-in, `has_perm`, the admin) with its permission reads held."""

    def get_user_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return set(_ALL.get())
        return set(_BY_USER.get().get(user_obj.pk, ()))

    def get_group_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return set(_ALL.get())
        by_group = _BY_GROUP.get()
        return {
            name
            for group_id in _GROUPS_BY_USER.get().get(user_obj.pk, ())
            for name in by_group.get(group_id, ())
        }
