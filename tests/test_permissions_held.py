"""Permissions are held per process (accounts.backends) and every change an admin can make
is seen on the next check: a role given or taken, a group's permissions edited, a group
deleted, a permission given to one user, superuser and inactive users."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from accounts.services import user_role_set

pytestmark = pytest.mark.django_db

User = get_user_model()
ENRICH = "enrichment.add_enrichmentrun"
REVIEW = "enrichment.change_reviewitem"


def _fresh(user) -> User:
    """The user as the next request reads them (a request's user caches its permissions)."""
    return User.objects.get(pk=user.pk)


def _user(role: str | None = None, **fields) -> User:
    user = User.objects.create_user(f"user{User.objects.count()}", password="pw", **fields)
    if role:
        user_role_set(user=user, role=role)
    return user


def test_a_check_asks_the_database_nothing_once_the_permissions_are_held():
    user = _user(Role.SDR)
    assert _fresh(user).has_perm(ENRICH)

    checked = _fresh(user)
    with CaptureQueriesContext(connection) as captured:
        assert checked.has_perm(ENRICH)
        assert not checked.has_perm(REVIEW)

    assert captured.captured_queries == []


def test_a_role_given_or_changed_is_seen_at_once():
    user = _user(Role.SDR)
    assert not _fresh(user).has_perm(REVIEW)

    user_role_set(user=user, role=Role.REVIEWER)
    assert _fresh(user).has_perm(REVIEW)

    user_role_set(user=user, role=Role.SDR)
    assert not _fresh(user).has_perm(REVIEW)


def test_a_group_losing_a_permission_or_deleted_is_seen_at_once():
    user = _user(Role.SDR)
    assert _fresh(user).has_perm(ENRICH)
    sdr = Group.objects.get(name=Role.SDR)

    sdr.permissions.remove(Permission.objects.get(codename="add_enrichmentrun"))
    assert not _fresh(user).has_perm(ENRICH)

    user.groups.add(extra := Group.objects.create(name="Extra"))
    extra.permissions.add(Permission.objects.get(codename="add_enrichmentrun"))
    assert _fresh(user).has_perm(ENRICH)

    extra.delete()
    assert not _fresh(user).has_perm(ENRICH)


def test_a_permission_given_to_one_user_is_theirs_alone():
    given, other = _user(), _user()
    given.user_permissions.add(Permission.objects.get(codename="change_reviewitem"))

    assert _fresh(given).has_perm(REVIEW)
    assert not _fresh(other).has_perm(REVIEW)
    assert _fresh(given).get_all_permissions() == {REVIEW}


def test_superusers_have_every_permission_and_inactive_users_none():
    superuser = _user(is_superuser=True)
    inactive = _user(Role.ADMIN, is_active=False)

    assert _fresh(superuser).get_all_permissions() == {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
    }
    assert _fresh(inactive).get_all_permissions() == set()
    assert not _fresh(inactive).has_perm(ENRICH)
