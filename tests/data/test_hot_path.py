"""The ingest hot path's shortcuts give the same answers as the full checks they skip:
the quick schema check never accepts what the compiled validator refuses, the depth
bound after parsing refuses every body the full measure refuses, and the batched
digests are the single-record ones."""

import itertools

import orjson
import pytest

from data import parse, schema
from data.archive import Limits, LocalArchiveStore, StreamLog, dedup_key, dedup_keys
from data.ingest import Ingestor, StreamSpec
from mlplatform import jsondepth

SCHEMAS = [
    {},
    {"type": "object"},
    {"type": "object", "properties": {"s": {"type": "string"}, "n": {"type": "integer"}}, "required": ["s"]},
    {"type": "object", "properties": {"v": {"type": ["number", "null"]}, "b": {"type": "boolean"}}},
    {"properties": {"a": {"type": "array"}, "o": {"type": "object"}}, "required": ["a"]},
    {"type": "object", "properties": {"x": {"description": "anything"}}, "required": ["x"]},
]
VALUES = ["t", "", 0, 1, -7, 1.0, 2.5, True, False, None, [], [1], {}, {"k": 1}]
KEYS = ["s", "n", "v", "b", "a", "o", "x"]


def records():
    yield from VALUES  # not objects at all
    for key, value in itertools.product(KEYS, VALUES):
        yield {key: value}
    for a, b in itertools.combinations(KEYS, 2):
        for value in VALUES:
            yield {a: value, b: "t", "extra": 1}
            yield {a: 3, b: value}


@pytest.mark.parametrize("rules", SCHEMAS)
def test_the_quick_check_never_accepts_what_the_validator_refuses(rules):
    fits, validator = schema.quick_check(rules), schema.compile_schema(rules)
    assert fits is not None
    said_yes = 0
    for record in records():
        if fits(record):
            said_yes += 1
            assert schema.check(validator, record) is None, (rules, record)
    assert said_yes > 0


def test_schemas_with_other_keywords_get_no_quick_check():
    assert schema.quick_check({"type": "object", "additionalProperties": False}) is None
    assert schema.quick_check({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}) is None
    assert schema.quick_check({"type": "array"}) is None
    assert schema.quick_check({"type": "object", "properties": {"n": {"type": "decimal"}}}) is None


def test_a_batch_with_refused_records_gets_the_validators_reasons(tmp_path):
    rules = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    spec = StreamSpec(id=1, key="p/s", schema=rules)
    ingestor = Ingestor(source=None, store=LocalArchiveStore(tmp_path), limits=Limits())
    batch = ingestor.prepare(spec, [{"n": 1}, {"n": 2.0}, {"n": "x"}, {"m": 1}, {"n": True}], origin=b"http")
    assert [orjson.loads(j) for j, _ in batch.records] == [{"n": 1}, {"n": 2.0}]
    assert [(q.index, q.reason) for q in batch.quarantined] == [
        (2, "data.n must be integer"),
        (3, "data must contain ['n'] properties"),
        (4, "data.n must be integer"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"[" + b"1," * 70 + b"[" * 70 + b"]" * 70 + b"]",  # scalars hide a deep record
        b'[{"a": ' + b"[" * 65 + b"]" * 65 + b"}]",
        b"[" * 66 + b"]" * 66,
        b'{"a": ' + b'{"b": ' * 65 + b"1" + b"}" * 66,
        b'[{"s": "[[[["}, ' + b"[" * 65 + b"]" * 65 + b"]",
    ],
)
def test_the_depth_bound_refuses_every_body_the_full_measure_refuses(body):
    with pytest.raises(jsondepth.TooDeep):
        jsondepth.check(body, jsondepth.MAX_DEPTH + 1)
    with pytest.raises(parse.Malformed, match="nests deeper"):
        parse.parse(body, "application/json")


def test_json_lines_get_the_same_depth_bound():
    deep = b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}"
    with pytest.raises(parse.Malformed, match="nests deeper"):
        parse.parse(b'{"a": 1}\n' + deep + b"\n", "application/x-ndjson")
    assert len(parse.parse(b'{"a": 1}\n' + b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}\n", "application/x-ndjson")) == 2


def test_bodies_at_the_depth_limit_and_malformed_deep_ones():
    at_limit = b"[" * 65 + b"]" * 65
    assert parse.parse(at_limit, "application/json") == orjson.loads(at_limit)
    flat = orjson.dumps([{"s": "[{[{", "n": i} for i in range(500)])
    assert len(parse.parse(flat, "application/json")) == 500
    with pytest.raises(parse.Malformed, match="nests deeper"):
        parse.parse(b"[" * 2000, "application/json")  # orjson stops at 1,024: still said as depth


def test_batched_digests_are_the_single_ones():
    encoded = [orjson.dumps({"n": i, "pad": "x" * i}) for i in range(50)]
    assert dedup_keys(b"topic/a", encoded) == [dedup_key(b"topic/a", j) for j in encoded]


def test_duplicates_inside_a_batch_and_against_the_window_are_dropped_once(tmp_path):
    log = StreamLog(LocalArchiveStore(tmp_path), "p/s", limits=Limits(dedup_window=3))
    first = log.append_sync([(b"1", "a"), (b"2", "b"), (b"3", "a")])
    assert (first.accepted, first.duplicates, first.last_seq) == (2, 1, 1)
    second = log.append_sync([(b"4", "c"), (b"5", "d")])  # the window of 3 forgets "a"
    assert (second.accepted, second.duplicates) == (2, 0)
    third = log.append_sync([(b"6", "a"), (b"7", "d"), (b"8", "b")])
    assert (third.accepted, third.duplicates, third.first_seq) == (1, 2, 4)
    log.close()


def test_segments_sealed_under_concurrent_appends_match_their_sha256(tmp_path):
    """The segment's sha256 is computed on the commit thread: every sealed file must
    still hash to what its manifest says, however the appends and seals interleave."""
    import hashlib
    import threading

    store = LocalArchiveStore(tmp_path)
    sealed = []
    log = StreamLog(store, "p/s", limits=Limits(records=70), on_seal=sealed.append)

    def writer(w):
        done = []
        for n in range(40):  # without waiting for each fsync: seals meet unhashed writes
            log.append(
                [(orjson.dumps({"w": w, "n": n, "i": i}), f"{w}-{n}-{i}") for i in range(w + 1)],
                on_durable=done.append,
            )
        log.append_sync([(orjson.dumps({"w": w, "last": True}), f"{w}-last")])
        assert done == [None] * 40

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert len(sealed) >= 4
    for segment in sealed:
        data = store.read(segment.path)
        assert hashlib.sha256(data).hexdigest() == segment.sha256
        assert orjson.loads(store.read(segment.path[: -len(".jsonl")] + ".json"))["sha256"] == segment.sha256
        assert len(data.splitlines()) == segment.records
    assert sum(s.records for s in sealed) <= 40 * (1 + 2 + 3 + 4) + 4


def test_parquet_columns_cut_from_the_segment_are_the_parsed_ones(tmp_path):
    """Compaction reads each line's head in C++ and cuts the record's text out as
    written: the same columns as parsing and re-encoding every line."""
    from data import segments

    log = StreamLog(LocalArchiveStore(tmp_path), "p/s", limits=Limits())
    records = [{"n": i, "s": 'héllo ✓ "q" \\ }', "nested": {"a": [1, 2.5, None]}} for i in range(30)]
    log.append_sync([(orjson.dumps(r), f"k{i}") for i, r in enumerate(records)])
    log.append_sync([(orjson.dumps(["not", "an", "object"]), "m:12345678901234567890")])
    log.close()
    data = b"".join(
        (tmp_path / rel).read_bytes() for rel in LocalArchiveStore(tmp_path).list("p/s", "dt=*/hr=*/*.open")
    )
    table = segments._columns_fast(data)
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert table.column("seq").to_pylist() == [line["seq"] for line in lines]
    assert [t.timestamp() * 1000 for t in table.column("ingested_at").to_pylist()] == [line["t"] for line in lines]
    assert table.column("key").to_pylist() == [line["k"] for line in lines]
    assert table.column("record").to_pylist() == [orjson.dumps(line["r"]).decode() for line in lines]
    escaped = data + b'{"seq":31,"t":1,"k":"m:a\\"b","r":{"n":1}}\n'
    assert segments._columns_fast(escaped) is None  # a key with an escape: parsed line by line
    assert segments._columns_fast(data + b'{"t":1,"seq":32,"k":"x","r":1}\n') is None
