"""A class's rights in JupyterHub's terms: the scopes a teacher holds (filtered to the class's
group), the role that carries them, and the class a group stores in its properties. Read by the
spawner (a student's classes), the hub's class API and the hub set-up."""

from __future__ import annotations

from jupyterhub import orm, roles

from .model import PROPERTY, ClassError, ClassSpec, parse_class

SERVICE_NAME = "fedhub-classes"  # the class service, under the hub
TEACH_SCOPE = "custom:fedhub:teach"
CLASSES_SCOPE = "custom:fedhub:classes"  # what an admin may do to classes, without the rest of admin
# what a teacher may change in their own class; the rest (teachers, students, opening labs) is an admin's
TEACHER_FIELDS = {"title", "centres", "resources", "sessions"}


def teacher_scopes(spec: ClassSpec, members: list[str]) -> list[str]:
    """The teachers' role: see and start/stop the class's users' servers, read the group, act
    through FedHub's class service; open the students' labs only where the class allows it.
    Never group membership, user changes, server state, tokens or admin.

    Opening a lab is checked by the student's own server, which cannot resolve a group filter
    (it has no database), so that scope names each member (``access:servers!user=<student>``) and
    follows the membership (``sync_teacher_role``)."""
    only = f"!group={spec.name}"
    scopes = [f"list:users{only}", f"read:users{only}", f"read:servers{only}", f"servers{only}",
              f"list:groups{only}", f"read:groups{only}", f"{TEACH_SCOPE}{only}",
              f"access:services!service={SERVICE_NAME}"]
    if spec.teachers_open_labs:
        scopes += [f"access:servers!user={name}" for name in sorted(members) if name not in spec.teachers]
    return scopes


def sync_teacher_role(db, spec: ClassSpec, group: orm.Group, log) -> orm.Role:
    """The class's role with the scopes its settings and current members give (made if missing)."""
    scopes = teacher_scopes(spec, [u.name for u in group.users])
    role = orm.Role.find(db, spec.role_name)
    if role is None or sorted(role.scopes or []) != sorted(scopes):
        role = roles.create_role(db, {"name": spec.role_name, "scopes": scopes, "managed_by_auth": True,
                                      "description": f"Teachers of the class {spec.name}"}, commit=False)
        role.managed_by_auth = True  # kept across hub restarts (load_roles would drop it)
        db.commit()
        log.info("Role %s now has %d scopes (class %s, %d members)", spec.role_name, len(scopes), spec.name,
                 len(group.users))
    return role


def stored_class(group: orm.Group, federation) -> ClassSpec | None:
    """The class a group holds (None: not a class, or settings the federation no longer accepts)."""
    raw = (group.properties or {}).get(PROPERTY)
    if not isinstance(raw, dict):
        return None
    try:
        return parse_class(raw, federation)
    except ClassError:
        return None
