"""tiny_detector: synthetic boxes enclose the drawn shapes; NMS agrees with torchvision.ops.nms."""

import torch
import torchvision

from snippets.detection_losses import DetectionLoss
from snippets.tiny_detector import (
    IMAGE_SIZE,
    ConvBNAct,
    TinyDetector,
    anchor_points,
    fit,
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


def test_dfl_head_decodes_the_expectation_of_its_bins_and_trains():
    torch.manual_seed(0)
    net = TinyDetector(lambda i, o, s: ConvBNAct(i, o, 3, s), reg_max=4)
    bins = {}
    for head in net.heads:  # catch each level's raw bin logits (B, 4 * 5, H, W)
        head.reg_pred.register_forward_hook(lambda m, i, out, h=head: bins.__setitem__(h.stride, out))
    torch.nn.init.normal_(net.heads[0].reg_pred.weight, std=0.5)  # zero-initialised: uniform bins
    X = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        _, boxes = net.eval()(X)
    # Reference: softmax over each side's 5 bins, expectation, times the stride, around the anchor points.
    expected = []
    for stride in (8, 16):
        p = bins[stride].flatten(2).transpose(1, 2).reshape(2, -1, 4, 5).softmax(-1)
        expected.append((p * torch.arange(5.0)).sum(-1) * stride)
    dist = torch.cat(expected, 1)
    anchors = anchor_points()
    torch.testing.assert_close(boxes, torch.cat([anchors - dist[..., :2], anchors + dist[..., 2:]], -1))
    outs = net.train()(X)
    assert len(outs) == 4 and outs[2].shape == (2, len(anchors), 4, 5) and outs[3].tolist()[63:65] == [8, 16]
    Xs, gt_boxes, gt_labels, gt_mask = make_shapes(64, seed=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: a second thread only waits (and stalls badly on a busy machine)
    try:
        history = fit(net, Xs, gt_boxes, gt_labels, gt_mask, DetectionLoss(), num_epochs=3, batch_size=32)
    finally:
        torch.set_num_threads(threads)
    assert history[-1] < history[0], history
