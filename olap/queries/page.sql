-- One page of runs, newest start first, ties by id descending, merged from the branches
-- (live rows and archived candidates), each already cut to its own first skip + take.
SELECT id, flow_id, flow_name, status, trigger_key, trigger_data_json, background_job_id,
       started_at, completed_at, source_run_id
  FROM (
{branches}
  )
 ORDER BY started_at DESC, id DESC
 LIMIT $take OFFSET $skip
