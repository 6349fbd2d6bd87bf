"""Roles and what each may do. A key has a role; a signed-in person gets one from their
account (superuser: admin; may change observations or in a Reviewer group: reviewer;
anyone else signed in: SDR)."""

from rest_framework.permissions import BasePermission

from api.models import ApiKey

SDR_PERMISSIONS = frozenset(
    {
        "leads.read",
        "leads.write",
        "leads.enrich",
        "observations.read",
        "companies.read",
        "usage.read",
    }
)
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    ApiKey.Role.SDR: SDR_PERMISSIONS,
    ApiKey.Role.REVIEWER: SDR_PERMISSIONS | {"observations.review"},
    ApiKey.Role.ADMIN: SDR_PERMISSIONS
    | {"observations.review", "leads.delete", "leads.export", "leads.erase"},
}


def request_role(request) -> str | None:
    """Return the role the request acts with, or None when nobody is signed in."""
    if isinstance(request.auth, ApiKey):
        return request.auth.role
    user = request.user
    if not (user and user.is_authenticated):
        return None
    if user.is_superuser:
        return ApiKey.Role.ADMIN
    groups = {name.lower() for name in user.groups.values_list("name", flat=True)}
    if "admin" in groups:
        return ApiKey.Role.ADMIN
    if "reviewer" in groups or user.has_perm("enrichment.change_observation"):
        return ApiKey.Role.REVIEWER
    return ApiKey.Role.SDR


def roles_with(permission: str) -> list[str]:
    return [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]


class HasRolePermission(BasePermission):
    """Allow the request when its role grants what the view asks for this action.

    A view names what it needs in `required_permissions`: a mapping from its action (for
    viewsets) or HTTP method to a permission name.
    """

    def has_permission(self, request, view) -> bool:
        needed = required_permission(request, view)
        role = request_role(request)
        if role is None:
            return False
        if needed is None or needed in ROLE_PERMISSIONS[role]:
            return True
        self.message = (
            f"This needs the {needed!r} permission, which role {role!r} does not have; "
            f"it needs a key or account with role {' or '.join(roles_with(needed))}."
        )
        return False


def required_permission(request, view) -> str | None:
    wanted = getattr(view, "required_permissions", {})
    action = getattr(view, "action", None)
    if action and action in wanted:
        return wanted[action]
    if request.method in ("HEAD", "OPTIONS"):
        return wanted.get("GET")
    return wanted.get(request.method)
