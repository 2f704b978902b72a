-- Issue 14: people's answers kept apart from every machine label, with their records: the store's side of
-- `assay export --human-only`. A view, so it never goes stale and costs nothing to keep.
CREATE VIEW human_labels AS
SELECT t.name AS task, a.task_id, r.dataset_id, r.row_index, r.data, a.annotator, a.value, a.created_at
FROM annotations a
JOIN records r ON r.id = a.record_id
JOIN tasks t ON t.id = a.task_id
WHERE a.annotator_kind = 'human';
