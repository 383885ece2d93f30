-- Counts and duration percentiles per bucket of one window; runs_u is the unified
-- (live UNION visible archive) relation already restricted to the window and flow.
-- Buckets are numbered from the aligned window start, so empty ones are simply absent.
WITH runs_u AS (
{runs}
)
SELECT (epoch_us(started_at) - $since_us) // $width_us AS bucket,
       count(*) AS total,
       count(*) FILTER (WHERE status = 'Succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'Failed') AS failed,
       count(*) FILTER (WHERE status = 'Cancelled') AS cancelled,
       count(*) FILTER (WHERE status = 'TimedOut') AS timed_out,
       count(*) FILTER (WHERE status = 'Skipped') AS skipped,
       count(*) FILTER (WHERE status = 'Running') AS running,
       quantile_cont((epoch_us(completed_at) - epoch_us(started_at)) / 1000.0, [0.5, 0.95, 0.99]) AS q
  FROM runs_u
 GROUP BY bucket
 ORDER BY bucket
