"""tiny_detector: synthetic boxes enclose the drawn shapes; NMS agrees with torchvision.ops.nms."""

import torch
import torchvision

from snippets.tiny_detector import (
    IMAGE_SIZE,
    ConvBNAct,
    TinyDetector,
    anchor_points,
    make_shapes,
    postprocess,
)


def test_boxes_enclose_the_painted_pixels():
    X, boxes, labels, mask = make_shapes(20, seed=3)
    assert X.shape == (20, 3, IMAGE_SIZE, IMAGE_SIZE) and 0 <= X.min() and X.max() <= 1
    assert mask[:, 0].all() and labels.max() <= 2
    for i in range(20):
        if mask[i].sum() != 1:
            continue
        # One object: pixels far brighter than the background (max 0.35 + noise) lie inside its box.
        bright = (X[i].max(0).values > 0.6).nonzero().float() + 0.5  # (y, x) centres
        x1, y1, x2, y2 = boxes[i, 0].tolist()
        inside = (
            (bright[:, 1] >= x1 - 1)
            & (bright[:, 1] <= x2 + 1)
            & (bright[:, 0] >= y1 - 1)
            & (bright[:, 0] <= y2 + 1)
        )
        assert inside.float().mean() > 0.99


def test_same_seed_same_images():
    assert torch.equal(make_shapes(3, seed=7)[0], make_shapes(3, seed=7)[0])
    assert not torch.equal(make_shapes(3, seed=7)[0], make_shapes(3, seed=8)[0])


def test_anchor_points_match_head_order_and_boxes_decode_around_them():
    anchors = anchor_points()
    assert (
        len(anchors) == 8 * 8 + 4 * 4
        and anchors[0].tolist() == [4.0, 4.0]
        and anchors[64].tolist() == [8.0, 8.0]
    )
    net = TinyDetector(lambda i, o, s: ConvBNAct(i, o, 3, s)).eval()
    with torch.no_grad():
        _, boxes = net(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    centre_inside = (boxes[..., 0] < anchors[:, 0]) & (anchors[:, 0] < boxes[..., 2])
    assert centre_inside.all()


def test_postprocess_matches_torchvision_nms_per_class():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(1, 50, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 10 + torch.rand(1, 50, 2, generator=g) * 10], -1)
    scores = torch.rand(1, 50, 3, generator=g)
    out_boxes, out_scores, out_labels = postprocess(scores, boxes, conf_threshold=0.5, max_det=1000)[0]
    for c in range(3):
        keep = scores[0, :, c] > 0.5
        expected = torchvision.ops.nms(boxes[0][keep], scores[0, keep, c], 0.5)
        got = out_scores[out_labels == c]
        torch.testing.assert_close(got.sort(descending=True).values, scores[0, keep, c][expected])
