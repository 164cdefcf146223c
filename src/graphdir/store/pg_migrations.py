"""The PostgreSQL schema as numbered migrations (the applied versions are kept in ``schema_version``).

Add a migration by appending to :data:`MIGRATIONS`; never edit one that shipped. The tables and
columns are SQLite's latest schema (:mod:`graphdir.store.migrations`), laid out so that the database
can be distributed by tenant (Citus, https://docs.citusdata.com/en/stable/sharding/data_modeling.html):

* every table's primary key and every unique index leads with ``tenant_id`` (``tenants``: its ``id``
  *is* the tenant id; ``meta`` and ``schema_version`` hold global rows under the tenant id ``''``);
* foreign keys only within one tenant: an edge (member, owner) refers to both its objects by
  ``(tenant_id, id)`` and goes with them (``ON DELETE CASCADE``), so no orphan edge can exist;
* no sequence at all: change numbers come from a per-tenant counter row (``change_counters``),
  bumped at the end of each write transaction (:mod:`graphdir.store.postgres_backend`);
* every text column is ``COLLATE "C"``: ordering and comparison are bytewise, as in SQLite;
* ``props`` is text (the exact JSON the store wrote, like SQLite's; filters cast it to ``jsonb``),
  ``rendered`` is ``bytea``.

SQLite's migration 6 (triggers counting group writes, for the writer's group cache across
connections) has no counterpart: the PostgreSQL writer keeps its group cache for one transaction only.
"""

from __future__ import annotations

#: Created before any migration runs (its own rows record which ran).
SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    tenant_id text COLLATE "C" NOT NULL DEFAULT '',
    version integer NOT NULL,
    PRIMARY KEY (tenant_id, version)
)
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "directory core, identity and change log, keyed by tenant",
        """
        CREATE TABLE tenants (
            id text COLLATE "C" PRIMARY KEY,
            display_name text COLLATE "C" NOT NULL,
            domain text COLLATE "C" NOT NULL,
            props text COLLATE "C" NOT NULL DEFAULT '{}',
            created text COLLATE "C" NOT NULL
        );
        CREATE TABLE objects (
            tenant_id text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            type text COLLATE "C" NOT NULL,
            display_name text COLLATE "C" NOT NULL DEFAULT '',
            upn text COLLATE "C",
            mail_nickname text COLLATE "C",
            created text COLLATE "C" NOT NULL,
            deleted text COLLATE "C",
            props text COLLATE "C" NOT NULL,
            rendered bytea,
            rendered_version text COLLATE "C",
            PRIMARY KEY (tenant_id, id)
        );
        CREATE UNIQUE INDEX objects_upn ON objects (tenant_id, upn) WHERE upn IS NOT NULL;
        -- lower() of a "C" text folds ASCII letters only: SQLite's NOCASE order
        CREATE INDEX objects_type_name ON objects (tenant_id, type, lower(display_name), id);
        CREATE TABLE members (
            tenant_id text COLLATE "C" NOT NULL,
            group_id text COLLATE "C" NOT NULL,
            member_id text COLLATE "C" NOT NULL,
            member_type text COLLATE "C" NOT NULL,
            PRIMARY KEY (tenant_id, group_id, member_id),
            CONSTRAINT members_group FOREIGN KEY (tenant_id, group_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT members_member FOREIGN KEY (tenant_id, member_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
        );
        CREATE INDEX members_reverse ON members (tenant_id, member_id, group_id);
        CREATE TABLE owners (
            tenant_id text COLLATE "C" NOT NULL,
            group_id text COLLATE "C" NOT NULL,
            owner_id text COLLATE "C" NOT NULL,
            owner_type text COLLATE "C" NOT NULL,
            PRIMARY KEY (tenant_id, group_id, owner_id),
            CONSTRAINT owners_group FOREIGN KEY (tenant_id, group_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT owners_owner FOREIGN KEY (tenant_id, owner_id) REFERENCES objects (tenant_id, id) ON DELETE CASCADE
        );
        CREATE INDEX owners_reverse ON owners (tenant_id, owner_id, group_id);
        CREATE TABLE changes (
            tenant_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            at text COLLATE "C" NOT NULL,
            object_id text COLLATE "C" NOT NULL,
            object_type text COLLATE "C" NOT NULL,
            action text COLLATE "C" NOT NULL,
            related_id text COLLATE "C",
            actor text COLLATE "C",
            detail text COLLATE "C",
            PRIMARY KEY (tenant_id, seq)
        );
        CREATE TABLE change_counters (
            tenant_id text COLLATE "C" PRIMARY KEY,
            seq bigint NOT NULL
        );
        CREATE TABLE meta (
            tenant_id text COLLATE "C" NOT NULL DEFAULT '',
            key text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            PRIMARY KEY (tenant_id, key)
        );
        CREATE TABLE applications (
            tenant_id text COLLATE "C" NOT NULL,
            app_id text COLLATE "C" NOT NULL,
            display_name text COLLATE "C" NOT NULL,
            props text COLLATE "C" NOT NULL DEFAULT '{}',
            created text COLLATE "C" NOT NULL,
            PRIMARY KEY (tenant_id, app_id)
        );
        CREATE TABLE role_assignments (
            tenant_id text COLLATE "C" NOT NULL,
            principal_id text COLLATE "C" NOT NULL,
            role_id text COLLATE "C" NOT NULL,
            PRIMARY KEY (tenant_id, principal_id, role_id)
        );
        CREATE TABLE authorization_codes (
            tenant_id text COLLATE "C" NOT NULL,
            code_hash text COLLATE "C" NOT NULL,
            props text COLLATE "C" NOT NULL,
            expires double precision NOT NULL,
            PRIMARY KEY (tenant_id, code_hash)
        );
        """,
    ),
    (
        2,
        "members_nested, objects_deleted: the group-typed edges and the soft-deleted objects alone, for the walk down to nested groups",
        # as SQLite's migration 7: a partial index that adding or removing a user never touches
        """
        CREATE INDEX members_nested ON members (tenant_id, group_id, member_id) WHERE member_type = 'group';
        CREATE INDEX objects_deleted ON objects (tenant_id, type, id) WHERE deleted IS NOT NULL;
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]

#: Unique constraints and indexes by name → the neutral words a :class:`~graphdir.store.base.Conflict`
#: carries (Graph property or relation names; never the database's message).
CONFLICT_NAMES: dict[str, str] = {
    "tenants_pkey": "id",
    "objects_pkey": "id",
    "objects_upn": "userPrincipalName",
    "members_pkey": "members",
    "owners_pkey": "owners",
    "changes_pkey": "changes",
    "meta_pkey": "key",
    "applications_pkey": "appId",
    "role_assignments_pkey": "roleAssignments",
    "authorization_codes_pkey": "code",
}
