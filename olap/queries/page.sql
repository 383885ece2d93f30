-- One page of runs, newest start first, ties by id descending. Each branch keeps only
-- its own first skip + take rows, so the archive scans stop early (top-N with row-group
-- pruning on the files' started_at order) before the branches are merged.
SELECT id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,
       started_at, completed_at, source_run_id
  FROM (
{branches}
  )
 ORDER BY started_at DESC, id DESC
 LIMIT $take OFFSET $skip
