-- Issue 14, PostgreSQL copy of migrations/sqlite/0007_audit_runs.sql: keep the two in step.
-- A summary of every finished `assay audit dups` and `assay audit overlap` run, filed under the SHA-256 of the
-- audited file's bytes. `parameters` and `counts` are JSON text; `ran_at` is RFC 3339 in UTC.
CREATE TABLE audit_runs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    dataset_sha256  TEXT NOT NULL,
    dataset_path    TEXT NOT NULL,
    parameters      TEXT NOT NULL,
    counts          TEXT NOT NULL,
    ran_at          TEXT NOT NULL
);

CREATE INDEX audit_runs_by_file ON audit_runs (dataset_sha256, kind);
CREATE INDEX audit_runs_by_path ON audit_runs (dataset_path, kind);
