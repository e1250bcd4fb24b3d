"""``vectors export``: every case replays against the model (passing cases conform in exact mode, failing
``flag-*`` cases are flagged with their clause); every clause of the exported components has a passing and a
failing case, or the README says why not."""
import json

import pytest

from t1virtio.oracle import vectors
from t1virtio.oracle.check import check_file


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("vectors")
    return d, vectors.export(d, count=1)


def test_every_case_replays_against_the_model(corpus):
    d, summary = corpus
    index = json.loads((d / "index.json").read_text())
    assert len(index["cases"]) == summary["cases"] > 6 * 9
    flagged = 0
    for case in index["cases"]:
        path = d / case["case"]
        if case["expect"] == "conforms":
            rep = check_file(path, "exact")
            assert rep.ok, (case["case"], rep.violation)
            assert check_file(path, "legality").ok, case["case"]
        else:
            rep = check_file(path, "legality")
            assert not rep.ok and rep.violation.clause == case["expect"]["violation"], case["case"]
            flagged += 1
    assert flagged >= 25


def test_every_clause_passing_and_failing_or_explained(corpus):
    d, summary = corpus
    readme = (d / "README.md").read_text()
    missing = readme.split("## Not covered by this corpus", 1)[1]
    for c, rows in summary["coverage"].items():
        for cid, r in rows.items():
            assert r["passing"], (c, cid)              # an accepted operation it governs
            if not r["failing"]:
                line = next((ln for ln in missing.splitlines() if f"`{cid}`:" in ln), None)
                assert line and len(line.split("`:", 1)[1].strip()) > 20, (c, cid)   # listed, with why
    guards = [(c, cid) for c, rows in summary["coverage"].items() for cid, r in rows.items() if r["kind"] == "guard"]
    failing = [g for g in guards if summary["coverage"][g[0]][g[1]]["failing"]]
    assert len(failing) >= 0.75 * len(guards)


def test_targeted_cases_reach_the_listed_guards(corpus):
    _, summary = corpus
    cov = summary["coverage"]
    for c, cid in [("split_device", "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#loop"),
                   ("split_device", "VIRTIO/model/chain#next-range"), ("split_device", "VIRTIO/model/chain#in-region"),
                   ("split_device", "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#total-len"),
                   ("swiotlb", "SWIOTLB-map-sizes"), ("swiotlb", "SWIOTLB-release-no-pool"),
                   ("msgq", "HYP-MSGQ-object-config"), ("msgq", "HYP-MSGQ-overflow"),
                   ("packed_device", "VIRTIO/model/packed/device#address-outside-region")]:
        assert cov[c][cid]["failing"] and cov[c][cid]["passing"], (c, cid)
