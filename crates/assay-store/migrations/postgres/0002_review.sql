-- Review (`assay serve`): people answer what the machine is unsure of, and every answer is an annotation beside
-- the machine's. PostgreSQL copy of migrations/sqlite/0002_review.sql: keep the two in step.

-- People. Tokens and session ids are stored only as SHA-256 hashes. Names are unique and never reused: a human
-- annotation's `annotator` is the name.
CREATE TABLE annotators (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    token_sha256  TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL
);

CREATE TABLE annotator_skills (
    annotator_id  BIGINT NOT NULL REFERENCES annotators (id),
    skill         TEXT NOT NULL,
    PRIMARY KEY (annotator_id, skill)
);

CREATE TABLE review_sessions (
    id_sha256     TEXT PRIMARY KEY,
    annotator_id  BIGINT NOT NULL REFERENCES annotators (id),
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);

-- A task under review. `spec` is the task as JSON (with its [review] section); `run_id` is the run human answers
-- are filed under, made when the project gets its dataset.
CREATE TABLE review_projects (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    task_id     BIGINT NOT NULL REFERENCES tasks (id),
    spec        TEXT NOT NULL,
    dataset_id  BIGINT REFERENCES datasets (id),
    run_id      TEXT REFERENCES runs (id),
    created_at  TEXT NOT NULL
);

-- An item routed to people, with why and what the machine said (JSON; null when it said nothing).
CREATE TABLE review_items (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES review_projects (id),
    record_id   BIGINT NOT NULL REFERENCES records (id),
    reason      TEXT NOT NULL,
    skill       TEXT,
    confidence  DOUBLE PRECISION,
    suggestion  TEXT,
    gold        TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (project_id, record_id)
);

-- One row per overlap slot. A slot is `open`, `claimed` by one person, or `answered`. The unique constraints are
-- the guarantee: a slot has one holder, and one person never holds two slots of an item.
CREATE TABLE review_assignments (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     BIGINT NOT NULL REFERENCES review_projects (id),
    item_id        BIGINT NOT NULL REFERENCES review_items (id),
    slot           BIGINT NOT NULL,
    priority       DOUBLE PRECISION NOT NULL,
    skill          TEXT,
    annotator_id   BIGINT REFERENCES annotators (id),
    status         TEXT NOT NULL,
    claimed_at     TEXT,
    answered_at    TEXT,
    annotation_id  BIGINT,
    UNIQUE (item_id, slot),
    UNIQUE (item_id, annotator_id)
);

CREATE INDEX review_assignments_open ON review_assignments (project_id, priority, item_id, slot)
    WHERE status = 'open';
CREATE INDEX review_assignments_by_annotator ON review_assignments (annotator_id, status, answered_at);

-- Items a person skipped: not offered to them again.
CREATE TABLE review_skips (
    item_id       BIGINT NOT NULL REFERENCES review_items (id),
    annotator_id  BIGINT NOT NULL REFERENCES annotators (id),
    skipped_at    TEXT NOT NULL,
    PRIMARY KEY (item_id, annotator_id)
);

-- What a human answer adds to an annotation: time spent, whether the machine's suggestion was on screen, and the
-- assignment (with its routing reason) it answered. Null for model annotations.
ALTER TABLE annotations ADD COLUMN duration_ms BIGINT;
ALTER TABLE annotations ADD COLUMN suggestion_shown BIGINT;
ALTER TABLE annotations ADD COLUMN assignment_id BIGINT;
ALTER TABLE annotations ADD COLUMN review_reason TEXT;
