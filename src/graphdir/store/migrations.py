"""Numbered schema migrations. The applied version is kept in ``schema_version``.

Add a migration by appending to :data:`MIGRATIONS`; never edit one that shipped.
Every table's key is led by ``tenant_id``.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "directory core: tenants, objects, members, owners, changes, meta",
        """
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            domain TEXT NOT NULL,
            props TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL
        );
        CREATE TABLE objects (
            tenant_id TEXT NOT NULL,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            display_name TEXT COLLATE NOCASE NOT NULL DEFAULT '',
            upn TEXT,
            mail_nickname TEXT,
            created TEXT NOT NULL,
            deleted TEXT,
            props TEXT NOT NULL,
            PRIMARY KEY (tenant_id, id)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX objects_upn ON objects (tenant_id, upn) WHERE upn IS NOT NULL;
        CREATE INDEX objects_type_name ON objects (tenant_id, type, display_name, id);
        CREATE TABLE members (
            tenant_id TEXT NOT NULL,
            group_id TEXT NOT NULL,
            member_id TEXT NOT NULL,
            member_type TEXT NOT NULL,
            PRIMARY KEY (tenant_id, group_id, member_id)
        ) WITHOUT ROWID;
        CREATE INDEX members_reverse ON members (tenant_id, member_id, group_id);
        CREATE TABLE owners (
            tenant_id TEXT NOT NULL,
            group_id TEXT NOT NULL,
            owner_id TEXT NOT NULL,
            owner_type TEXT NOT NULL,
            PRIMARY KEY (tenant_id, group_id, owner_id)
        ) WITHOUT ROWID;
        CREATE INDEX owners_reverse ON owners (tenant_id, owner_id, group_id);
        CREATE TABLE changes (
            tenant_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            object_id TEXT NOT NULL,
            object_type TEXT NOT NULL,
            action TEXT NOT NULL,
            related_id TEXT,
            actor TEXT,
            detail TEXT,
            PRIMARY KEY (tenant_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        "identity: applications (hashed secrets, granted permissions), directory role assignments, authorization codes",
        """
        CREATE TABLE applications (
            tenant_id TEXT NOT NULL,
            app_id TEXT NOT NULL,
            display_name TEXT NOT NULL,
            props TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            PRIMARY KEY (tenant_id, app_id)
        ) WITHOUT ROWID;
        CREATE TABLE role_assignments (
            tenant_id TEXT NOT NULL,
            principal_id TEXT NOT NULL,
            role_id TEXT NOT NULL,
            PRIMARY KEY (tenant_id, principal_id, role_id)
        ) WITHOUT ROWID;
        CREATE TABLE authorization_codes (
            tenant_id TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            props TEXT NOT NULL,
            expires REAL NOT NULL,
            PRIMARY KEY (tenant_id, code_hash)
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        "objects.rendered: each object's default projection, encoded once at write time",
        """
        ALTER TABLE objects ADD COLUMN rendered BLOB;
        """,
    ),
    (
        4,
        "objects as a rowid table with a unique (tenant_id, id) index: rows of ~1 KB no longer spill into overflow pages",
        # A WITHOUT ROWID table keeps at most ~1,000 bytes of a row in its B-tree page and moves the
        # rest to an overflow page of its own; an object (props + rendering) is ~1-2 KB, so every
        # object cost two pages and the file was 2.6x larger than needed. As a rowid table a row stays
        # whole in its leaf page and the narrow key index stays in cache: point reads ~40 % and
        # 999-member pages ~50 % cheaper (bench/README.md).
        """
        CREATE TABLE objects_v4 (
            rid INTEGER PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            display_name TEXT COLLATE NOCASE NOT NULL DEFAULT '',
            upn TEXT,
            mail_nickname TEXT,
            created TEXT NOT NULL,
            deleted TEXT,
            props TEXT NOT NULL,
            rendered BLOB
        );
        INSERT INTO objects_v4 (tenant_id, id, type, display_name, upn, mail_nickname, created, deleted, props, rendered)
            SELECT tenant_id, id, type, display_name, upn, mail_nickname, created, deleted, props, rendered
            FROM objects ORDER BY tenant_id, id;
        DROP TABLE objects;
        ALTER TABLE objects_v4 RENAME TO objects;
        CREATE UNIQUE INDEX objects_key ON objects (tenant_id, id);
        CREATE UNIQUE INDEX objects_upn ON objects (tenant_id, upn) WHERE upn IS NOT NULL;
        CREATE INDEX objects_type_name ON objects (tenant_id, type, display_name, id);
        """,
    ),
    (
        5,
        "objects.rendered_version: the rendering key of the projection objects.rendered was made with",
        # NULL for every row written before: those are re-rendered at the next start
        # (SqliteStore.refresh_renderings) and, until then, on read.
        """
        ALTER TABLE objects ADD COLUMN rendered_version TEXT;
        """,
    ),
    (
        6,
        "meta.groups_version: bumped by triggers on every write of a group row, by any connection",
        # The writer caches the group rows it reads; another connection's commit used to empty that
        # cache whatever it wrote (a membership restore, a `graphdir user create`), and refilling it
        # cost the next batch ~30 ms and a young collection (bench/README.md#tail-latency). Now the
        # cache is emptied only when this counter moved. Triggers, so that every writer counts,
        # graphdir's own code or not; only group rows count (the cache holds nothing else).
        """
        INSERT OR IGNORE INTO meta (key, value) VALUES ('groups_version', '0');
        CREATE TRIGGER groups_version_insert AFTER INSERT ON objects WHEN NEW.type = 'group'
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'groups_version'; END;
        CREATE TRIGGER groups_version_update AFTER UPDATE ON objects WHEN OLD.type = 'group' OR NEW.type = 'group'
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'groups_version'; END;
        CREATE TRIGGER groups_version_delete AFTER DELETE ON objects WHEN OLD.type = 'group'
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'groups_version'; END;
        """,
    ),
    (
        7,
        "members_nested, objects_deleted: the group-typed edges and the soft-deleted objects alone, for the walk down to nested groups",
        # Partial indexes: adding or removing a user (the hot path) touches neither, finding the groups
        # nested in a 1,000,000-member group reads only them, and whether any of them is soft-deleted
        # is one probe each into an index of the soft-deleted objects alone (graphdir.store.transitive).
        """
        CREATE INDEX members_nested ON members (tenant_id, group_id, member_id) WHERE member_type = 'group';
        CREATE INDEX objects_deleted ON objects (tenant_id, type, id) WHERE deleted IS NOT NULL;
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]
