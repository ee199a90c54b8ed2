"""The job record on moto's DynamoDB server: a page counts once however often it is delivered; idempotency keys."""

import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from gpu_worker.protocol import Conflict, JobCreate, NotFound, final_status


def new_job(jobs_aws, owner="key-owner-1", pages=(1, 2, 3)):
    job = jobs_aws.table.create_job(
        f"job-{uuid.uuid4().hex}", owner, JobCreate(file=f"s3://b/uploads/{owner}/x"), None
    )
    jobs_aws.table.set_pages_total(job["id"], list(pages))
    return job


def test_a_page_delivered_twice_counts_once(jobs_aws):
    table, job = jobs_aws.table, new_job(jobs_aws)
    assert table.start_page(job["id"], 1)
    assert table.finish_page(job, 1, prompt_tokens=10, completion_tokens=5) is True
    assert table.finish_page(job, 1, prompt_tokens=10, completion_tokens=5) is False
    assert table.start_page(job["id"], 1) is False  # a finished page is never started again
    record = table.get_job(job["id"])
    assert record["pages_done"] == 1 and record["pages_failed"] == 0 and record["status"] == "running"


def test_a_failed_page_is_counted_failed_with_its_error(jobs_aws):
    table, job = jobs_aws.table, new_job(jobs_aws, pages=(1,))
    assert table.finish_page(job, 1, error="ServiceError: engine broke")
    assert table.page(job["id"], 1)["error"] == "ServiceError: engine broke"
    assert table.get_job(job["id"])["pages_failed"] == 1


def test_the_final_status_is_set_once(jobs_aws):
    table, job = jobs_aws.table, new_job(jobs_aws)
    assert table.complete(job["id"], "partial", {"markdown": "m", "json": "j"}, "1 of 3 page(s) failed.")
    assert not table.complete(job["id"], "succeeded", None)
    assert table.get_job(job["id"])["status"] == "partial"
    assert (final_status(3, 0), final_status(3, 1), final_status(3, 3)) == ("succeeded", "partial", "failed")


def test_idempotency_key_same_body_same_job_other_body_conflict(jobs_aws):
    table = jobs_aws.table
    assert table.claim_idempotency_key("key-a", "k1", "hash-1", "job-1") is None
    assert table.claim_idempotency_key("key-a", "k1", "hash-1", "job-2") == "job-1"
    with pytest.raises(Conflict):
        table.claim_idempotency_key("key-a", "k1", "hash-2", "job-3")
    assert table.claim_idempotency_key("key-b", "k1", "hash-2", "job-4") is None  # keys are per API key


def test_another_owner_sees_nothing_and_cannot_cancel(jobs_aws):
    table, job = jobs_aws.table, new_job(jobs_aws, owner="key-owner-2")
    with pytest.raises(NotFound):
        table.get_owned(job["id"], "key-intruder")
    with pytest.raises(NotFound):
        table.cancel(job["id"], "key-intruder")
    assert table.cancel(job["id"], "key-owner-2")["status"] == "cancelled"


def test_jobs_made_in_the_same_second_list_newest_first(jobs_aws, monkeypatch):
    import gpu_worker.protocol.job_table as job_table

    owner, base = f"key-same-second-{uuid.uuid4().hex[:6]}", 1_800_000_000.0
    # Ids falling as time rises: a whole-seconds sort key would list these oldest first, every run.
    ids = [f"job-{digit * 32}" for digit in "fedcb"]
    for n, job_id in enumerate(ids):
        monkeypatch.setattr(job_table.time, "time", lambda n=n: base + 0.1 + n * 0.05)
        jobs_aws.table.create_job(job_id, owner, JobCreate(file=f"s3://b/uploads/{owner}/x"), None)
    monkeypatch.undo()
    items, more = jobs_aws.table.list_jobs(owner, 10, None)
    assert [item["id"] for item in items] == ids[::-1] and not more
    # Paging from the middle keeps the order.
    rest, _ = jobs_aws.table.list_jobs(owner, 10, ids[2])
    assert [item["id"] for item in rest] == ids[:2][::-1]


def test_records_with_the_old_seconds_key_still_sort_by_time_among_new_ones(jobs_aws):
    from gpu_worker.protocol.job_table import created_id

    owner = f"key-old-ids-{uuid.uuid4().hex[:6]}"
    old_id, new_id, newer_id = (f"job-{uuid.uuid4().hex}" for _ in range(3))
    jobs_aws.table.table.put_item(Item={"pk": f"job#{old_id}", "sk": "job", "id": old_id, "owner": owner,
                                        "created_id": f"{1_800_000_001:012d}#{old_id}"})  # fmt: skip
    for job_id, moment in ((new_id, 1_800_000_000.999), (newer_id, 1_800_000_001.001)):
        jobs_aws.table.table.put_item(Item={"pk": f"job#{job_id}", "sk": "job", "id": job_id, "owner": owner,
                                            "created_id": created_id(moment, job_id)})  # fmt: skip
    items, _ = jobs_aws.table.list_jobs(owner, 10, None)
    assert [item["id"] for item in items] == [newer_id, old_id, new_id]


def test_the_final_status_and_the_unsent_event_mark_are_one_write(jobs_aws):
    table, job = jobs_aws.table, new_job(jobs_aws)
    assert table.complete(job["id"], "succeeded", {"markdown": "m", "json": "j"})
    finished = int(table.get_job(job["id"])["finished"])
    due = {d["id"]: d for d in table.notify_due(before=finished + 1, limit=100)}
    assert due[job["id"]]["notify_after"] == finished
    assert job["id"] not in {d["id"] for d in table.notify_due(before=finished, limit=100)}  # not overdue yet
    # Two workers find it overdue: one claim wins, and the mark moves on (the next retry waits again).
    assert table.claim_notify(job["id"], finished, now=finished + 200)
    assert not table.claim_notify(job["id"], finished, now=finished + 200)
    assert job["id"] not in {d["id"] for d in table.notify_due(before=finished + 200, limit=100)}
    table.notified(job["id"])
    record = table.get_job(job["id"])
    assert "notify_state" not in record and "notify_after" not in record and record["status"] == "succeeded"
    assert job["id"] not in {d["id"] for d in table.notify_due(before=finished + 10_000, limit=100)}


def test_a_cancelled_job_owes_no_event(jobs_aws):
    table, job = jobs_aws.table, new_job(jobs_aws, owner="key-owner-cancel")
    assert table.cancel(job["id"], "key-owner-cancel")["status"] == "cancelled"
    assert "notify_state" not in table.get_job(job["id"])


def test_pages_that_finish_together_in_one_worker_all_count(jobs_aws):
    """A batch's pages are counted from several threads at once, all on the same job item. The GIL is made
    to switch very often so the threads (and the local DynamoDB's own) interleave: without the worker's
    lock around a count, the local emulator lost 5 of 180 counts and a job stayed 11/12 for ever."""
    table, rounds = jobs_aws.table, 15
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        counted = []
        for _ in range(rounds):
            job = new_job(jobs_aws, owner="key-owner-race", pages=range(1, 13))
            start = threading.Barrier(12)

            def finish(number: int, job: dict = job, start: threading.Barrier = start) -> bool:
                start.wait()
                return table.finish_page(job, number, prompt_tokens=1, completion_tokens=1)

            with ThreadPoolExecutor(12) as pool:
                assert all(pool.map(finish, range(1, 13)))
            counted.append(int(table.get_job(job["id"])["pages_done"]))
    finally:
        sys.setswitchinterval(switch)
    assert counted == [12] * rounds


def test_a_count_cancelled_by_a_concurrent_one_is_retried_and_a_duplicate_is_not():
    from botocore.exceptions import ClientError

    from gpu_worker.consumer import transient

    def cancelled(*codes: str) -> ClientError:
        return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                            "CancellationReasons": [{"Code": c} for c in codes],
                            "ResponseMetadata": {"HTTPStatusCode": 400}}, "TransactWriteItems")  # fmt: skip

    assert transient(cancelled("None", "TransactionConflict", "None"))
    assert not transient(cancelled("ConditionalCheckFailed", "None", "None"))
    assert not transient(cancelled("ConditionalCheckFailed", "TransactionConflict", "None"))
