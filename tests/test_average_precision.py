"""average_precision: hand-made detection sets whose AP is known."""

import numpy as np
import pytest

from snippets.average_precision import average_precision, box_iou, mean_average_precision

GT_BOX = [0, 0, 10, 10]
FAR_BOX = [50, 50, 60, 60]


def dets(boxes, scores, labels=None):
    labels = [0] * len(boxes) if labels is None else labels
    return (np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(labels))


def truth(boxes, labels=None):
    labels = [0] * len(boxes) if labels is None else labels
    return (np.array(boxes, float).reshape(-1, 4), np.array(labels))


def test_perfect_detection_is_one():
    assert mean_average_precision([dets([GT_BOX], [0.9])], [truth([GT_BOX])], 1) == 1.0


def test_false_positive_ranked_first_halves_ap():
    # Ranking FP, TP: precision at recall 1 is 1/2 -> AP 0.5.
    # Ranked TP, FP: the FP comes after full recall -> AP 1.
    assert mean_average_precision([dets([FAR_BOX, GT_BOX], [0.9, 0.8])], [truth([GT_BOX])], 1) == 0.5
    assert mean_average_precision([dets([GT_BOX, FAR_BOX], [0.9, 0.8])], [truth([GT_BOX])], 1) == 1.0


def test_missed_object_and_duplicate():
    # Two objects, one found: recall stops at 1/2 -> AP 0.5. A duplicate of the found one is a false positive.
    gts = [truth([GT_BOX, FAR_BOX])]
    assert mean_average_precision([dets([GT_BOX], [0.9])], gts, 1) == 0.5
    assert mean_average_precision([dets([GT_BOX, GT_BOX], [0.9, 0.8])], gts, 1) == 0.5


def test_interpolated_envelope():
    # Ranking TP, FP, TP over two objects: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # All-point interpolation: 1/2 * 1 + 1/2 * 2/3 = 5/6.
    d = dets([GT_BOX, [30, 30, 40, 40], FAR_BOX], [0.9, 0.8, 0.7])
    assert mean_average_precision([d], [truth([GT_BOX, FAR_BOX])], 1) == pytest.approx(5 / 6)
    assert average_precision([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(5 / 6)


def test_iou_threshold_and_images_and_classes():
    shifted = [4, 0, 14, 10]  # IoU with GT_BOX = 60 / 140 = 0.43
    assert box_iou(np.array([shifted], float), np.array([GT_BOX], float))[0, 0] == pytest.approx(60 / 140)
    assert mean_average_precision([dets([shifted], [0.9])], [truth([GT_BOX])], 1, iou_threshold=0.5) == 0.0
    assert mean_average_precision([dets([shifted], [0.9])], [truth([GT_BOX])], 1, iou_threshold=0.4) == 1.0
    # Class 0 perfect, class 1 missed (detected as class 0 at a far box); class 2 has no objects: ignored.
    detections = [dets([GT_BOX], [0.9], [0]), dets([], [], [])]
    truths = [truth([GT_BOX], [0]), truth([FAR_BOX], [1])]
    assert mean_average_precision(detections, truths, 3) == 0.5


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 images but ground truth for 1"):
        mean_average_precision([dets([], []), dets([], [])], [truth([GT_BOX])], 1)
    with pytest.raises(ValueError, match="no ground-truth boxes"):
        mean_average_precision([dets([], [])], [truth([])], 1)
