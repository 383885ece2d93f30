import uuid

from oltp.store import RunStore


def test_smoke(dsn, clock):
    s = RunStore(dsn, clock=clock)
    rid = uuid.uuid4()
    r = s.start_run(uuid.uuid4(), "f", rid, "manual", '{"a": 1}')
    assert r.status == "Running"
    assert s.try_record_dispatch(rid, "a") is True
    assert s.try_record_dispatch(rid, "a") is False
    s.record_step_start(rid, "a", "http", '{"x":1}')
    s.record_step_start(rid, "a", "http", '{"x":1}')
    s.record_step_complete(rid, "a", "Succeeded", '{"ok":true}')
    s.complete_run(rid, "Succeeded")
    s.complete_run(rid, "Succeeded")
    s.retry_step(rid, "a")
    d = s.get_run_detail(rid)
    print(d)
    assert d.steps[0].attempt_count == 2
    assert s.get_active_runs()[0].id == rid
    s.close()
