"""Nested (one table) vs flat (three tables): write and read costs at 200k runs x 5 attempts."""
import duckdb, time, shutil, pyarrow as pa
from deltalake import write_deltalake, DeltaTable, WriterProperties
N=200_000
con=duckdb.connect(); con.execute("SET TimeZone='UTC'")
con.execute(f"""CREATE TABLE runs AS SELECT uuid()::VARCHAR id, 'flow '||(i%20) flow_name, ['Succeeded','Failed'][1+(i%2)] status,
  TIMESTAMPTZ '2026-01-01' + to_seconds(i*30) started_at, TIMESTAMPTZ '2026-01-01' + to_seconds(i*30+60+(i%97)) completed_at,
  CAST(TIMESTAMPTZ '2026-01-01' + to_seconds(i*30) AS DATE) started_date FROM range({N}) t(i)""")
con.execute("""CREATE TABLE att AS SELECT r.id run_id, r.started_date, r.started_at run_started_at, 'step-'||k step_key, 1 attempt, 'Failed' status,
  CASE WHEN k=2 THEN 'error '||r.id ELSE NULL END error_message, '{"rows": '||k||', "msg": "ok ok ok"}' output_json FROM runs r, range(5) s(k)""")
wp=WriterProperties(compression="ZSTD")
flat_runs=con.sql("SELECT * FROM runs").to_arrow_table(); flat_att=con.sql("SELECT * FROM att").to_arrow_table()
nested=con.sql("""SELECT r.*, a.attempts FROM runs r JOIN (SELECT run_id, list(struct_pack(step_key:=step_key, attempt:=attempt, status:=status,
  error_message:=error_message, output_json:=output_json)) attempts FROM att GROUP BY run_id) a ON a.run_id=r.id ORDER BY started_at""").to_arrow_table()
for p in ("/tmp/spike/nested","/tmp/spike/flat"): shutil.rmtree(p, ignore_errors=True)
B=20_000
t=time.time()
for i in range(0,N,B): write_deltalake("/tmp/spike/nested", nested.slice(i,B), mode="append", partition_by=["started_date"], writer_properties=wp)
tn=time.time()-t
fa=flat_att.sort_by("run_started_at")
t=time.time()
for i in range(0,N,B):
    write_deltalake("/tmp/spike/flat/runs", flat_runs.slice(i,B), mode="append", partition_by=["started_date"], writer_properties=wp)
    write_deltalake("/tmp/spike/flat/attempts", fa.slice(i*5,B*5), mode="append", partition_by=["started_date"], writer_properties=wp)
tf=time.time()-t
def files(p): return DeltaTable(p).file_uris()
def q(sql, reps=5):
    best=9e9
    for _ in range(reps):
        t=time.time(); duckdb.sql(sql).fetchall(); best=min(best,time.time()-t)
    return best
nr=files("/tmp/spike/nested"); fr=files("/tmp/spike/flat/runs"); fa_=files("/tmp/spike/flat/attempts")
ts_n=q(f"SELECT date_trunc('hour',started_at), count(*), quantile_cont(epoch(completed_at-started_at),0.95) FROM read_parquet({nr}) GROUP BY 1")
ts_f=q(f"SELECT date_trunc('hour',started_at), count(*), quantile_cont(epoch(completed_at-started_at),0.95) FROM read_parquet({fr}) GROUP BY 1")
er_n=q(f"SELECT a.step_key, count(*) FROM (SELECT unnest(attempts) a FROM read_parquet({nr})) WHERE a.error_message IS NOT NULL GROUP BY 1")
er_f=q(f"SELECT step_key, count(*) FROM read_parquet({fa_}) WHERE error_message IS NOT NULL GROUP BY 1")
import os
def size(p): return sum(os.path.getsize(os.path.join(d,f)) for d,_,fs in os.walk(p) for f in fs if f.endswith(".parquet"))
print(f"write 200k runs + 1M attempts in 10 batches: nested {tn:.2f}s, flat {tf:.2f}s")
print(f"hourly timeseries+p95: nested {ts_n:.3f}s flat {ts_f:.3f}s; step error counts: nested {er_n:.3f}s flat {er_f:.3f}s")
print(f"bytes: nested {size('/tmp/spike/nested')/1e6:.1f} MB, flat {size('/tmp/spike/flat')/1e6:.1f} MB")
