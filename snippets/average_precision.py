"""Average precision (all-point interpolated, as in PASCAL VOC 2010+) and mAP@IoU for object detection.

Taught in: lessons/21_tiny_detector.ipynb. Needs: numpy.
`mean_average_precision(detections, ground_truths, num_classes)` takes one (boxes, scores, labels) tuple per
image for the detections and one (boxes, labels) per image for the ground truth; boxes are xyxy.
Array-likes (numpy arrays or CPU torch tensors) are accepted.
"""

import numpy as np


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of xyxy boxes."""
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def average_precision(recall, precision) -> float:
    """Area under the precision-recall curve after making precision monotonically decreasing."""
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    if recall.shape != precision.shape:
        raise ValueError(f"recall {recall.shape} and precision {precision.shape} must have the same shape")
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[1.0 if len(precision) else 0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # envelope: best precision at this recall or higher
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def _as_numpy(x, shape_tail, dtype):
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=dtype)
    return x.reshape((-1, *shape_tail)) if x.size == 0 else x


def class_average_precision(detections, ground_truths, label, iou_threshold=0.5) -> float | None:
    """AP of one class over all images; None when the class has no ground-truth box."""
    records, num_gt = [], 0  # (score, is_true_positive)
    for (d_boxes, d_scores, d_labels), (g_boxes, g_labels) in zip(detections, ground_truths, strict=True):
        d_boxes, g_boxes = _as_numpy(d_boxes, (4,), float), _as_numpy(g_boxes, (4,), float)
        d_scores, d_labels = _as_numpy(d_scores, (), float), _as_numpy(d_labels, (), int)
        g_labels = _as_numpy(g_labels, (), int)
        gt = g_boxes[g_labels == label]
        num_gt += len(gt)
        mine = d_labels == label
        boxes, scores = d_boxes[mine], d_scores[mine]
        order = np.argsort(-scores, kind="stable")
        matched = np.zeros(len(gt), bool)
        iou = box_iou(boxes[order], gt) if len(gt) else np.zeros((len(order), 0))
        for row, i in enumerate(order):  # greedy: highest score first, each ground truth used once
            candidates = np.where(~matched, iou[row], -1.0) if len(gt) else np.array([])
            best = int(candidates.argmax()) if len(candidates) else -1
            hit = best >= 0 and candidates[best] >= iou_threshold
            if hit:
                matched[best] = True
            records.append((scores[i], hit))
    if num_gt == 0:
        return None
    if not records:
        return 0.0
    records.sort(key=lambda r: -r[0])  # stable: equal scores keep image order
    tp = np.cumsum([hit for _, hit in records])
    fp = np.cumsum([not hit for _, hit in records])
    return average_precision(tp / num_gt, tp / (tp + fp))


def mean_average_precision(detections, ground_truths, num_classes: int, iou_threshold=0.5) -> float:
    """mAP@iou_threshold: the mean AP over classes that have at least one ground-truth box."""
    if len(detections) != len(ground_truths):
        raise ValueError(
            f"got detections for {len(detections)} images but ground truth for {len(ground_truths)}"
        )
    aps = [class_average_precision(detections, ground_truths, c, iou_threshold) for c in range(num_classes)]
    aps = [ap for ap in aps if ap is not None]
    if not aps:
        raise ValueError("no ground-truth boxes: mAP is undefined")
    return float(np.mean(aps))


def _self_check():
    gt = [(np.array([[0, 0, 10, 10]]), np.array([0]))]
    det = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0.9, 0.8]), np.array([0, 0]))]
    assert mean_average_precision(det, gt, num_classes=1) == 1.0
