"""The result spool on its own: kept in order, survives a restart, bounded with the oldest out first."""

from gpu_worker.spool import ResultSpool, StoredObject


def objects(request_id, size=100):
    return [StoredObject(f"results/{request_id}/annotated.png", b"p" * size, "image/png"),
            StoredObject(f"results/{request_id}/result.json", b"{}", "application/json")]  # fmt: skip


def test_results_come_back_oldest_first_with_their_objects_in_write_order(tmp_path):
    spool = ResultSpool(tmp_path, max_bytes=10_000)
    spool.add("a", objects("a"))
    spool.add("b", objects("b"))
    entries = spool.entries()
    assert [spool.load(e)[0].key for e in entries] == ["results/a/annotated.png", "results/b/annotated.png"]
    assert [o.key.rsplit("/", 1)[1] for o in spool.load(entries[0])] == ["annotated.png", "result.json"]
    spool.remove(entries[0])
    assert len(spool.entries()) == 1


def test_a_restarted_worker_finds_what_was_spooled_but_not_half_written_entries(tmp_path):
    ResultSpool(tmp_path, max_bytes=10_000).add("a", objects("a"))
    (tmp_path / ".tmp-crashed").mkdir()
    reopened = ResultSpool(tmp_path, max_bytes=10_000)
    assert [reopened.load(e)[1].key for e in reopened.entries()] == ["results/a/result.json"]
    assert not (tmp_path / ".tmp-crashed").exists()


def test_a_full_spool_drops_the_oldest_and_counts_it(tmp_path):
    spool = ResultSpool(tmp_path, max_bytes=2_500)
    for request_id in "abcd":
        spool.add(request_id, objects(request_id, size=1_000))
    kept = [spool.load(e)[1].key.split("/")[1] for e in spool.entries()]
    assert kept == ["c", "d"] and spool.dropped == 2
    assert not spool.has_room()
