-- The schema of projects, people, tasks and API tokens.

CREATE TABLE projects (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    api_rate_limit integer NOT NULL DEFAULT 60 CHECK (api_rate_limit > 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (email LIKE '%_@_%'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TYPE member_role AS ENUM ('admin', 'team_member', 'community_member');

CREATE TABLE memberships (
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    role       member_role NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TABLE task_groups (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    position   integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- the target of tasks' composite key, so a task can only sit in a group of its own project
    UNIQUE (project_id, id)
);
CREATE INDEX task_groups_project_idx ON task_groups (project_id, position, id);

CREATE TYPE task_status AS ENUM ('backlog', 'planned', 'in_progress', 'completed');

CREATE TABLE tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    task_group_id bigint NOT NULL,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    description   text,
    status        task_status NOT NULL DEFAULT 'backlog',
    assigned_to   bigint,
    position      integer NOT NULL CHECK (position >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (project_id, task_group_id) REFERENCES task_groups (project_id, id) ON DELETE CASCADE,
    -- an assignee must be a member of the task's project; leaving the project unassigns
    FOREIGN KEY (project_id, assigned_to) REFERENCES memberships (project_id, user_id)
        ON DELETE SET NULL (assigned_to),
    -- checked at commit, so a transaction may shift a run of positions by one
    CONSTRAINT tasks_group_position_key UNIQUE (task_group_id, position) DEFERRABLE INITIALLY DEFERRED
);
-- one index per list filter, each in the list's order (newest first)
CREATE INDEX tasks_project_created_idx ON tasks (project_id, created_at DESC, id DESC);
CREATE INDEX tasks_group_created_idx ON tasks (project_id, task_group_id, created_at DESC, id DESC);
CREATE INDEX tasks_status_created_idx ON tasks (project_id, status, created_at DESC, id DESC);
CREATE INDEX tasks_assignee_created_idx ON tasks (project_id, assigned_to, created_at DESC, id DESC);

-- Exact list totals without counting rows: one counter per (project, group, status, assignee),
-- kept by a trigger in the same transaction as every write to tasks.
CREATE TABLE task_counts (
    project_id    bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    task_group_id bigint NOT NULL,
    status        task_status NOT NULL,
    assignee_key  bigint NOT NULL,  -- assigned_to, or 0 for unassigned (a key column cannot be NULL)
    n             bigint NOT NULL,
    PRIMARY KEY (project_id, task_group_id, status, assignee_key)
);

CREATE FUNCTION task_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE task_counts SET n = n - 1
         WHERE project_id = OLD.project_id AND task_group_id = OLD.task_group_id
           AND status = OLD.status AND assignee_key = coalesce(OLD.assigned_to, 0);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO task_counts AS c (project_id, task_group_id, status, assignee_key, n)
        VALUES (NEW.project_id, NEW.task_group_id, NEW.status, coalesce(NEW.assigned_to, 0), 1)
        ON CONFLICT (project_id, task_group_id, status, assignee_key) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_count_insert_delete AFTER INSERT OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION task_counts_apply();
CREATE TRIGGER tasks_count_update AFTER UPDATE OF project_id, task_group_id, status, assigned_to ON tasks
    FOR EACH ROW
    WHEN (OLD.task_group_id IS DISTINCT FROM NEW.task_group_id OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.assigned_to IS DISTINCT FROM NEW.assigned_to OR OLD.project_id IS DISTINCT FROM NEW.project_id)
    EXECUTE FUNCTION task_counts_apply();

CREATE TABLE subtasks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    completed  boolean NOT NULL DEFAULT false,
    position   integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subtasks_task_idx ON subtasks (task_id);

CREATE TABLE comments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
    user_id    bigint REFERENCES users ON DELETE SET NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_task_idx ON comments (task_id);

CREATE TYPE token_mode AS ENUM ('live', 'test');

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    mode         token_mode NOT NULL,
    digest       bytea NOT NULL UNIQUE CHECK (length(digest) = 32),  -- SHA-256 of the whole token
    last_four    text NOT NULL CHECK (length(last_four) = 4),
    rate_limit   integer CHECK (rate_limit > 0),                     -- overrides the project's when set
    created_by   bigint REFERENCES users ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_project_idx ON api_tokens (project_id, created_at DESC);
