"""The torchvision zoo as a test: models we did not write, both exporters, injected faults.

Each model of tools/zoo.py's SUBSET (classification, attention, segmentation, video, detection; random
weights with batch-norm statistics set, small inputs) is exported with each exporter that can, and
export_onnx must verify it against PyTorch. The layer diff must flag no clean export, and must name
the layer of an injected fault (a weight times 1 + 5 % noise for dynamo, an activation changed for the
legacy exporter) or the row after it, in at least 95 % of the cases. The reference for "which layer"
is where the fault was injected, never what the diff reported. `make zoo` runs all models and faults.
"""

import pytest

from tools.zoo import CI_EXPORTERS, EXPORTERS, SUBSET, format_rows, run_model


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return [
        run_model(name, exporter, folder, with_faults="one")
        for name in SUBSET
        for exporter in CI_EXPORTERS.get(name, EXPORTERS)
    ]


def test_zoo_subset_exports_verify_and_faults_are_found(rows):
    table = format_rows(rows)
    print(table)
    assert len({r["model"] for r in rows}) >= 12
    failed = [f"{r['model']} ({r['exporter']}): {r['cause']}" for r in rows if not r["ok"]]
    assert not failed, table
    alarms = [f"{r['model']} ({r['exporter']}): {r['cause']}" for r in rows if r["false_alarm"]]
    assert not alarms, table
    cases = [f for r in rows for f in r["faults"]]
    assert len(cases) >= 20 and {f["fault"].split()[0] for f in cases} >= {
        "weight",
        "ReLU->LeakyReLU(0.1)",
        "GELU",
    }
    hits = sum(f["found"] for f in cases)
    print(f"fault found in {hits}/{len(cases)} cases")
    assert hits >= 0.95 * len(cases), table


def test_models_with_non_tensor_intermediates_say_what_was_skipped(rows):
    detector = next(r for r in rows if r["model"].startswith("fasterrcnn"))
    assert detector["ok"] and detector["skipped"] > 0  # ImageList, dicts of features: listed with a note
