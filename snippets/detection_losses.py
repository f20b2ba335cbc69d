"""Losses and label assignment of a YOLOv6-style anchor-free detector: VariFocal, GIoU, SIoU, DFL, simple TAL.

Taught in: lessons/21_tiny_detector.ipynb. Needs: torch.
Boxes are (x1, y1, x2, y2) in pixels. `task_aligned_assign` picks, for every ground-truth box, the top-k
anchor points inside it by score**alpha * IoU**beta; `DetectionLoss` combines it with VFL + GIoU (or SIoU),
plus the distribution focal loss when the net predicts each box side as a distribution (DFL).
"""

import math

import torch
import torch.nn.functional as F

EPS = 1e-7


def _check_boxes(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.shape[-1] != 4:
        raise ValueError(f"expected two (..., 4) box tensors of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")  # fmt: skip


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def varifocal_loss(logits, target_score, alpha=0.75, gamma=2.0, reduction="sum"):
    """VariFocal loss (Zhang et al. 2021). target_score: IoU-aware score q in [0, 1], 0 for negatives.

    Positives (q > 0) are weighted by q; negatives by alpha * p**gamma (p = sigmoid(logits)), so easy
    negatives fade away while positives with a high-quality box count most.
    """
    if logits.shape != target_score.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target_score {tuple(target_score.shape)} differ")
    p = logits.sigmoid().detach()
    weight = torch.where(target_score > 0, target_score, alpha * p.pow(gamma))
    bce = F.binary_cross_entropy_with_logits(logits, target_score, reduction="none")
    return _reduce(bce * weight, reduction)


def _iou_terms(pred, target):
    """IoU plus the pieces GIoU and SIoU need: widths/heights and the enclosing box."""
    x1, y1 = torch.max(pred[..., 0], target[..., 0]), torch.max(pred[..., 1], target[..., 1])
    x2, y2 = torch.min(pred[..., 2], target[..., 2]), torch.min(pred[..., 3], target[..., 3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    w1, h1 = pred[..., 2] - pred[..., 0], pred[..., 3] - pred[..., 1]
    w2, h2 = target[..., 2] - target[..., 0], target[..., 3] - target[..., 1]
    union = w1 * h1 + w2 * h2 - inter
    iou = inter / (union + EPS)
    cw = torch.max(pred[..., 2], target[..., 2]) - torch.min(pred[..., 0], target[..., 0])
    ch = torch.max(pred[..., 3], target[..., 3]) - torch.min(pred[..., 1], target[..., 1])
    return iou, union, w1, h1, w2, h2, cw, ch


def giou_loss(pred, target, reduction="mean"):
    """1 - GIoU: IoU minus the share of the enclosing box that neither box covers."""
    _check_boxes(pred, target)
    iou, union, *_, cw, ch = _iou_terms(pred, target)
    enclosing = cw * ch
    giou = iou - (enclosing - union) / (enclosing + EPS)
    return _reduce(1 - giou, reduction)


def siou_loss(pred, target, reduction="mean"):
    """SIoU loss (Gevorgyan 2022): 1 - IoU + (distance cost + shape cost) / 2, distance shaped by angle.

    Angle cost is 0 when the centres are aligned on an axis and 1 at 45 degrees; it makes the distance
    cost push the prediction onto the nearer axis first.
    """
    _check_boxes(pred, target)
    iou, _, w1, h1, w2, h2, cw, ch = _iou_terms(pred, target)
    dx = (target[..., 0] + target[..., 2] - pred[..., 0] - pred[..., 2]) / 2  # centre offsets
    dy = (target[..., 1] + target[..., 3] - pred[..., 1] - pred[..., 3]) / 2
    sigma = torch.sqrt(dx**2 + dy**2) + EPS
    sin_x, sin_y = dx.abs() / sigma, dy.abs() / sigma
    sin_alpha = torch.where(sin_x > math.sqrt(2) / 2, sin_y, sin_x)  # the angle to the nearer axis
    angle_cost = torch.cos(2 * torch.arcsin(sin_alpha) - math.pi / 2)
    gamma = angle_cost - 2
    rho_x, rho_y = (dx / (cw + EPS)) ** 2, (dy / (ch + EPS)) ** 2
    distance_cost = 2 - torch.exp(gamma * rho_x) - torch.exp(gamma * rho_y)
    omega_w = (w1 - w2).abs() / torch.max(w1, w2).clamp(min=EPS)
    omega_h = (h1 - h2).abs() / torch.max(h1, h2).clamp(min=EPS)
    shape_cost = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
    return _reduce(1 - iou + (distance_cost + shape_cost) / 2, reduction)


def distribution_focal_loss(logits, target, reduction="mean"):
    """DFL (Li et al. 2020, Generalized Focal Loss): logits (..., R+1) over bins 0..R, target (...) in [0, R].

    Cross-entropy towards the two bins around the target, weighted by nearness: the softmax expectation of
    that two-bin target is exactly the target, so the loss pulls the decoded distance onto it.
    """
    if logits.shape[:-1] != target.shape:
        raise ValueError(f"logits (..., R+1) {tuple(logits.shape)} and target {tuple(target.shape)} disagree")
    reg_max = logits.shape[-1] - 1
    target = target.clamp(0, reg_max - 0.01)  # the right bin must exist
    left = target.long()
    w_right = target - left
    log_p = logits.log_softmax(-1)
    nll_left = -log_p.gather(-1, left[..., None])[..., 0]
    nll_right = -log_p.gather(-1, (left + 1)[..., None])[..., 0]
    return _reduce(nll_left * (1 - w_right) + nll_right * w_right, reduction)


def pairwise_iou(boxes1, boxes2):
    """IoU of every box in boxes1 (..., N, 4) with every box in boxes2 (..., M, 4): (..., N, M)."""
    a, b = boxes1[..., :, None, :], boxes2[..., None, :, :]
    return _iou_terms(*torch.broadcast_tensors(a, b))[0]


@torch.no_grad()
def task_aligned_assign(
    scores, pred_boxes, anchors, gt_boxes, gt_labels, gt_mask, topk=9, alpha=1.0, beta=6.0
):
    """Simplified task-aligned assignment (TOOD/YOLOv6 TAL) for a batch.

    scores (B, A, C) probabilities, pred_boxes (B, A, 4), anchors (A, 2) points, gt_boxes (B, G, 4),
    gt_labels (B, G) int, gt_mask (B, G) bool (padding False). Returns target_labels (B, A),
    target_boxes (B, A, 4), target_scores (B, A, C) and fg_mask (B, A).
    """
    B, A, C = scores.shape
    # 1. Candidates: anchor points that fall inside a ground-truth box.
    x, y = anchors[:, 0], anchors[:, 1]
    g = gt_boxes[..., None, :]  # (B, G, 1, 4)
    inside = (x > g[..., 0]) & (x < g[..., 2]) & (y > g[..., 1]) & (y < g[..., 3]) & gt_mask[..., None]
    # 2. Alignment metric t = s**alpha * IoU**beta: high only where the class score AND the box are good.
    iou = pairwise_iou(gt_boxes, pred_boxes).clamp(min=0)  # (B, G, A)
    cls_score = scores.gather(2, gt_labels.long()[:, None, :].expand(B, A, -1)).transpose(1, 2)  # (B, G, A)
    align = cls_score.pow(alpha) * iou.pow(beta) * inside
    # 3. Keep the top-k candidates per ground truth (ties early in training fall back to "inside").
    k = min(topk, A)
    top = (align + inside * EPS).topk(k, dim=2).indices
    is_pos = torch.zeros_like(inside).scatter_(2, top, True) & inside
    # 4. An anchor claimed by several boxes goes to the one it overlaps most.
    multi = is_pos.sum(1, keepdim=True) > 1
    best = F.one_hot(iou.masked_fill(~inside, -1).argmax(1), gt_boxes.shape[1]).transpose(1, 2).bool()
    is_pos = torch.where(multi, best & inside, is_pos)
    fg_mask = is_pos.any(1)
    gt_index = is_pos.float().argmax(1)  # (B, A)
    target_labels = gt_labels.long().gather(1, gt_index)
    target_boxes = gt_boxes.gather(1, gt_index[..., None].expand(-1, -1, 4))
    # 5. Soft class target: t normalised per ground truth so its best anchor gets that box's best IoU.
    align = align * is_pos
    norm = (align * iou.amax(2, keepdim=True) / (align.amax(2, keepdim=True) + EPS)).amax(1)  # (B, A)
    target_scores = F.one_hot(target_labels, C).float() * (norm * fg_mask)[..., None]
    return target_labels, target_boxes, target_scores, fg_mask


class DetectionLoss:
    """VariFocal classification loss + box loss (GIoU or SIoU) on TAL-assigned anchors (+ DFL).

    Called as loss_fn(cls_logits (B, A, C), pred_boxes (B, A, 4), anchors (A, 2), gt_boxes, gt_labels,
    gt_mask), and with bin_logits (B, A, 4, R+1) and anchor strides (A,) added when the net predicts
    distributions: then dfl_weight * DFL on the positives' distances (in strides) is added.
    """

    def __init__(self, box_loss="giou", box_weight=2.5, topk=9, alpha=1.0, beta=6.0, dfl_weight=0.5):
        if box_loss not in ("giou", "siou"):
            raise ValueError(f"box_loss must be 'giou' or 'siou', got {box_loss!r}")
        self.box_fn = giou_loss if box_loss == "giou" else siou_loss
        self.box_weight, self.topk, self.alpha, self.beta = box_weight, topk, alpha, beta
        self.dfl_weight = dfl_weight

    def __call__(
        self, cls_logits, pred_boxes, anchors, gt_boxes, gt_labels, gt_mask, bin_logits=None, strides=None
    ):
        _, target_boxes, target_scores, fg_mask = task_aligned_assign(
            cls_logits.sigmoid().detach(), pred_boxes.detach(), anchors, gt_boxes, gt_labels, gt_mask,
            self.topk, self.alpha, self.beta,
        )  # fmt: skip
        num_pos = max(fg_mask.sum().item(), 1)
        cls_loss = varifocal_loss(cls_logits, target_scores) / max(target_scores.sum().item(), 1.0)
        box_loss = self.box_fn(pred_boxes[fg_mask], target_boxes[fg_mask], reduction="sum") / num_pos
        loss = cls_loss + self.box_weight * box_loss
        if bin_logits is not None:
            if strides is None:
                raise ValueError("DFL needs each anchor's stride with the bin logits")
            # Target distances (left, top, right, bottom) from each positive anchor, in units of its stride.
            tb, point = target_boxes[fg_mask], anchors.expand_as(pred_boxes[..., :2])[fg_mask]
            dist = (
                torch.cat([point - tb[:, :2], tb[:, 2:] - point], 1)
                / strides.expand(fg_mask.shape)[fg_mask, None]
            )
            dfl = distribution_focal_loss(bin_logits[fg_mask], dist, reduction="sum") / (4 * num_pos)
            loss = loss + self.dfl_weight * dfl
        return loss
