-- Served models (issue 6): every answer of an OpenAI-compatible server, stored before any label is derived from
-- it, so a resumed or repeated run pays for nothing twice; and what each run asked and paid. Keep in step with
-- migrations/postgres/0003_model_responses.sql. Times are RFC 3339 text in UTC; JSON is text.

-- `request_key` is the hex SHA-256 of the endpoint path and the full request body (model, prompt, parameters). Answers
-- outlive the runs that fetched them, so `run_id` is a plain note, not a reference.
CREATE TABLE model_responses (
    request_key    TEXT PRIMARY KEY,
    model          TEXT NOT NULL,
    endpoint_path  TEXT NOT NULL,
    response       TEXT NOT NULL,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    run_id         TEXT,
    created_at     TEXT NOT NULL
);

-- Per run of a served model: requests sent and answered, answers taken from the cache, tokens and cost paid.
-- Updated with every committed chunk, so an interrupted run shows what it did.
CREATE TABLE run_usage (
    run_id         TEXT PRIMARY KEY REFERENCES runs (id),
    endpoint       TEXT NOT NULL,
    scoring        TEXT NOT NULL,
    requests       BIGINT NOT NULL DEFAULT 0,
    cache_hits     BIGINT NOT NULL DEFAULT 0,
    retries        BIGINT NOT NULL DEFAULT 0,
    input_tokens   BIGINT NOT NULL DEFAULT 0,
    output_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_usd       DOUBLE PRECISION NOT NULL DEFAULT 0
);
