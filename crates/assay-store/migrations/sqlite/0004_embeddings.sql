-- Embeddings (issue 12): one vector per (embedder, text), computed once and reused by every later run, task and
-- dataset that embeds the same text. Keep in step with migrations/postgres/0004_embeddings.sql.
-- `embedder` is the embedder's identity (name and model file SHA-256, or for a served model its URL and name);
-- `text_sha256` is the hex SHA-256 of the exact text embedded (the row rendered with the task's template), so the
-- key covers the template and the record. `vector` holds `dim` little-endian f32 values.
CREATE TABLE embeddings (
    embedder     TEXT NOT NULL,
    text_sha256  TEXT NOT NULL,
    dim          INTEGER NOT NULL,
    vector       BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (embedder, text_sha256)
);
