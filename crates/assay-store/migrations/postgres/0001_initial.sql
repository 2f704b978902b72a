-- The backbone schema, PostgreSQL copy of migrations/sqlite/0001_initial.sql: keep the two in step.
-- Times are RFC 3339 text in UTC; JSON is text.

CREATE TABLE datasets (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL UNIQUE,
    format      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE records (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id  BIGINT NOT NULL REFERENCES datasets (id),
    row_index   BIGINT NOT NULL,
    data        TEXT NOT NULL,
    UNIQUE (dataset_id, row_index)
);

CREATE TABLE tasks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (name, spec_hash)
);

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    task_id       BIGINT NOT NULL REFERENCES tasks (id),
    dataset_id    BIGINT NOT NULL REFERENCES datasets (id),
    annotator     TEXT NOT NULL,
    model_sha256  TEXT NOT NULL,
    prompt_hash   TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL,
    items_scored  BIGINT NOT NULL DEFAULT 0,
    rows_skipped  BIGINT NOT NULL DEFAULT 0,
    summary       TEXT
);

-- One row per (task, record, annotator): a model labels an item once per task version; a person answers once.
-- `scores` keeps the model's raw log-probabilities and never changes; value/confidence/distribution are the
-- calibrated result and are rewritten when calibration is refitted.
CREATE TABLE annotations (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id         BIGINT NOT NULL REFERENCES tasks (id),
    record_id       BIGINT NOT NULL REFERENCES records (id),
    run_id          TEXT NOT NULL REFERENCES runs (id),
    annotator_kind  TEXT NOT NULL,
    annotator       TEXT NOT NULL,
    model_sha256    TEXT NOT NULL,
    prompt_hash     TEXT NOT NULL,
    scores          TEXT,
    value           TEXT,
    confidence      DOUBLE PRECISION,
    distribution    TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (task_id, record_id, annotator_kind, annotator)
);

CREATE TABLE row_errors (
    run_id     TEXT NOT NULL REFERENCES runs (id),
    row_index  BIGINT NOT NULL,
    reason     TEXT NOT NULL
);

CREATE INDEX annotations_by_run ON annotations (run_id);
CREATE INDEX row_errors_by_run ON row_errors (run_id);
