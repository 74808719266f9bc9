-- Projection: the operator's policy for a project (sandbox, unsafe runner opt-in, toolchain
-- mounts, CI-file edits, when branches are published), as JSON of `ProjectPolicy`. Set only
-- at registration (`factory project add` flags, `POST /api/projects`); a repository's own
-- `.factory/project.toml` cannot widen it. '{}' is the default policy.
ALTER TABLE projects ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';

-- Projection: when a delivered work order's branch was published (pushed, pull request
-- opened), and why then ('after_review' or 'on_delivery'); NULL while not published.
ALTER TABLE work_orders ADD COLUMN published_policy TEXT;
