"""detection_losses: GIoU and focal parts against torchvision, SIoU and TAL against hand-computed cases."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, generalized_box_iou_loss, sigmoid_focal_loss

from snippets.detection_losses import (
    DetectionLoss,
    distribution_focal_loss,
    giou_loss,
    siou_loss,
    task_aligned_assign,
    varifocal_loss,
)


def random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 30], 1)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_giou_matches_torchvision(reduction):
    pred, target = random_boxes(500, 0), random_boxes(500, 1)
    expected = generalized_box_iou_loss(pred, target, reduction=reduction)
    torch.testing.assert_close(giou_loss(pred, target, reduction), expected, atol=1e-5, rtol=1e-5)


def test_siou_hand_cases():
    a = torch.tensor([[0.0, 0, 2, 2]])
    assert siou_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    # Shifted along x: angle cost 0, distance cost 1 - exp(-2 (dx/cw)^2), IoU 1/3, enclosing width 3.
    b = torch.tensor([[1.0, 0, 3, 2]])
    assert siou_loss(a, b).item() == pytest.approx(2 / 3 + 0.5 * (1 - math.exp(-2 / 9)), abs=1e-5)
    # Shifted diagonally (45 degrees): angle cost 1, so gamma = -1; IoU 1/7; rho_x = rho_y = 1/9.
    c = torch.tensor([[1.0, 1, 3, 3]])
    assert siou_loss(a, c).item() == pytest.approx(6 / 7 + 0.5 * (2 - 2 * math.exp(-1 / 9)), abs=1e-5)
    # Same centre, different shape: only the shape cost: omega_w = 2/4, omega_h = 0.
    d = torch.tensor([[-1.0, 0, 3, 2]])
    assert siou_loss(a, d).item() == pytest.approx(0.5 + 0.5 * (1 - math.exp(-0.5)) ** 4, abs=1e-5)


def test_siou_is_at_least_one_minus_iou():
    pred, target = random_boxes(300, 2), random_boxes(300, 3)
    one_minus_iou = 1 - box_iou(pred, target).diagonal()
    assert (siou_loss(pred, target, "none") >= one_minus_iou - 1e-6).all()


def test_varifocal_negatives_are_torchvision_focal_loss():
    logits = torch.randn(64, 3, generator=torch.Generator().manual_seed(4))
    zeros = torch.zeros_like(logits)
    expected = sigmoid_focal_loss(logits, zeros, alpha=0.25, gamma=2.0, reduction="sum")
    torch.testing.assert_close(varifocal_loss(logits, zeros, alpha=0.75, gamma=2.0), expected)


def test_varifocal_positive_is_score_weighted_bce():
    logits, q = torch.tensor([1.5, -0.5]), torch.tensor([0.8, 0.3])
    expected = (q * F.binary_cross_entropy_with_logits(logits, q, reduction="none")).sum()
    torch.testing.assert_close(varifocal_loss(logits, q), expected)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        giou_loss(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="reduction"):
        siou_loss(torch.zeros(1, 4), torch.zeros(1, 4), reduction="avg")
    with pytest.raises(ValueError, match="box_loss"):
        DetectionLoss(box_loss="ciou")


def test_task_aligned_assign_hand_case():
    # A 4x4 grid of anchor points (centres 2, 6, 10, 14) and one object covering the four centres 6 and 10.
    c = torch.tensor([2.0, 6, 10, 14])
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    anchors = torch.stack([xx.flatten(), yy.flatten()], 1)
    gt = torch.tensor([[[4.0, 4, 12, 12]]])
    pred = gt.expand(1, 16, 4).clone()
    pred[0, 5] += torch.tensor([0, 0, 2.0, 0])  # anchor 5 (6, 6) predicts a slightly wider box
    scores = torch.full((1, 16, 2), 0.5)
    labels, boxes, target_scores, fg = task_aligned_assign(
        scores, pred, anchors, gt, torch.tensor([[1]]), torch.tensor([[True]]), topk=3
    )
    inside = {5, 6, 9, 10}
    assert set(fg[0].nonzero().flatten().tolist()) <= inside and int(fg.sum()) == 3
    assert 5 not in fg[0].nonzero().flatten().tolist()  # its box is the worst of the four: IoU 0.8
    assert (labels[0][fg[0]] == 1).all() and (boxes[0][fg[0]] == gt[0, 0]).all()
    # Soft targets: the best anchor gets the object's best IoU (1.0 here), only in the object's class column.
    assert target_scores[0, fg[0], 1].max().item() == pytest.approx(1.0, abs=1e-5)
    assert target_scores[0, :, 0].abs().sum() == 0 and target_scores[0, ~fg[0]].abs().sum() == 0


def test_distribution_focal_loss_is_cross_entropy_with_a_two_bin_target():
    g = torch.Generator().manual_seed(5)
    logits, target = torch.randn(400, 9, generator=g), torch.rand(400, generator=g) * 7.99
    left = target.floor().long()
    two_bin = (
        F.one_hot(left, 9) * (left + 1 - target)[:, None] + F.one_hot(left + 1, 9) * (target - left)[:, None]
    )
    assert torch.allclose(two_bin @ torch.arange(9.0), target, atol=1e-5)  # its expectation is the target
    expected = F.cross_entropy(logits, two_bin, reduction="none")  # torch's soft-target cross-entropy
    torch.testing.assert_close(distribution_focal_loss(logits, target, "none"), expected)
    print(f"DFL vs F.cross_entropy with soft targets: {len(target)} targets in [0, 8), 9 bins")
    with pytest.raises(ValueError, match="disagree"):
        distribution_focal_loss(logits, target[:10])


def test_detection_loss_adds_dfl_only_with_bin_logits():
    g = torch.Generator().manual_seed(6)
    anchors = torch.tensor([[4.0, 4.0], [12.0, 4.0]])
    gt, labels, mask = torch.tensor([[[0.0, 0, 16, 8]]]), torch.tensor([[0]]), torch.tensor([[True]])
    cls, boxes = torch.randn(1, 2, 1, generator=g), gt.expand(1, 2, 4).clone()
    bins = torch.randn(1, 2, 4, 5, generator=g)
    plain = DetectionLoss(dfl_weight=1.0)(cls, boxes, anchors, gt, labels, mask)
    with_dfl = DetectionLoss(dfl_weight=1.0)(
        cls, boxes, anchors, gt, labels, mask, bins, torch.tensor([8.0, 8.0])
    )
    # Both anchors are positive; their target sides in strides: anchor (4, 4) -> (0.5, 0.5, 1.5, 0.5) etc.
    dist = torch.tensor([[0.5, 0.5, 1.5, 0.5], [1.5, 0.5, 0.5, 0.5]])
    expected_dfl = distribution_focal_loss(bins[0], dist, "sum") / 8
    torch.testing.assert_close(with_dfl - plain, expected_dfl)
