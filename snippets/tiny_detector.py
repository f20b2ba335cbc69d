"""A tiny YOLOv6-style anchor-free detector and the synthetic shapes data set it learns in seconds on a CPU.

Taught in: lessons/21_tiny_detector.ipynb (also used by lessons 22 and 23). Needs: torch, torchvision, numpy.
`make_shapes(n)` draws coloured rectangles, circles and triangles with their boxes; `TinyDetector(block)`
is an EfficientRep-like backbone + small Rep-PAN neck + efficient decoupled head, built from any
`block(in_channels, out_channels, stride)` (pass a RepVGG block to get the YOLOv6 design); `fit` trains it
with any loss `loss_fn(cls_logits, boxes, anchors, gt_boxes, gt_labels, gt_mask)`; `predict` decodes + NMS.
With `reg_max=R` the head predicts each box side as a distribution over R + 1 bins (DFL, as YOLOv6-M/L) and
decodes it by its expectation; in training mode the net then also returns the bin logits and each anchor's
stride, which `fit` passes on to the loss.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

CLASSES = ("rectangle", "circle", "triangle")
IMAGE_SIZE = 64
MAX_OBJECTS = 3
STRIDES = (8, 16)
# The training recipe lessons 21-23 share (about 10 s on one CPU core).
TRAIN_IMAGES, VAL_IMAGES, NUM_EPOCHS, LR, BATCH_SIZE = 800, 300, 8, 0.02, 64


def make_shapes(n: int, seed: int = 0, size: int = IMAGE_SIZE, max_objects: int = MAX_OBJECTS):
    """n images (n, 3, size, size) in [0, 1] with 1..max_objects shapes each.

    Returns X, gt_boxes (n, max_objects, 4) xyxy pixels, gt_labels (n, max_objects), gt_mask (n, max_objects).
    """
    if n < 1 or size < 32:
        raise ValueError(f"need n >= 1 images of size >= 32 pixels, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    X = np.empty((n, 3, size, size), np.float32)
    boxes = np.zeros((n, max_objects, 4), np.float32)
    labels = np.zeros((n, max_objects), np.int64)
    mask = np.zeros((n, max_objects), bool)
    for i in range(n):
        image = rng.uniform(0.0, 0.35, 3)[:, None, None] + rng.normal(0, 0.04, (3, size, size))
        for j in range(rng.integers(1, max_objects + 1)):
            for _ in range(20):  # retry until the shape barely overlaps the others
                w = rng.uniform(0.18, 0.45) * size
                h = w * rng.uniform(0.7, 1.3)
                x1, y1 = rng.uniform(0, size - w), rng.uniform(0, size - h)
                box = np.array([x1, y1, x1 + w, y1 + h], np.float32)
                if not mask[i].any() or _max_iou(box, boxes[i][mask[i]]) < 0.2:
                    break
            label = rng.integers(len(CLASSES))
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if label == 0:
                m = (xx >= box[0]) & (xx <= box[2]) & (yy >= box[1]) & (yy <= box[3])
            elif label == 1:
                m = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1
            else:  # apex at the top centre, base along the bottom edge
                rel = (yy - box[1]) / h
                m = (rel >= 0) & (rel <= 1) & (np.abs(xx - cx) <= rel * w / 2)
            image[:, m] = rng.uniform(0.45, 1.0, 3)[:, None]
            boxes[i, j], labels[i, j], mask[i, j] = box, label, True
        X[i] = np.clip(image, 0, 1)
    return torch.from_numpy(X), torch.from_numpy(boxes), torch.from_numpy(labels), torch.from_numpy(mask)


def _max_iou(box, others):
    x1, y1 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x2, y2 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return float((inter / (area(box) + area(others) - inter)).max())


class ConvBNAct(nn.Module):
    """relu(bn(conv(x))) for the 1x1 convs; reparameterize() folds the BN into the conv."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)) if self.bn is not None else self.conv(x))

    @torch.no_grad()
    def reparameterize(self):
        if self.bn is None:
            return
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, self.conv.kernel_size,
                          self.conv.stride, self.conv.padding, bias=True)  # fmt: skip
        fused.weight.copy_(self.conv.weight * scale[:, None, None, None])
        fused.bias.copy_(self.bn.bias - self.bn.running_mean * scale)
        self.conv, self.bn = fused, None


class DecoupledHead(nn.Module):
    """Efficient decoupled head for one level: a shared 1x1 stem, then one 3x3 conv per task.

    reg_max=0: each side distance is softplus(one value) * stride. reg_max=R > 0 (DFL): R + 1 logits per
    side, distance = expectation of softmax over the bins 0..R, times stride.
    """

    def __init__(self, block, channels, num_classes, stride, reg_max=0):
        super().__init__()
        self.stride, self.reg_max = stride, reg_max
        self.stem = ConvBNAct(channels, channels)
        self.cls_conv, self.reg_conv = block(channels, channels, 1), block(channels, channels, 1)
        self.cls_pred = nn.Conv2d(channels, num_classes, 1)
        self.reg_pred = nn.Conv2d(channels, 4 * (reg_max + 1), 1)
        nn.init.constant_(self.cls_pred.bias, -4.6)  # prior probability 0.01: few false positives at start
        nn.init.zeros_(self.reg_pred.weight)
        # softplus(1) * stride: boxes ~2.6 strides wide; DFL: uniform bins, each side reg_max / 2 strides.
        nn.init.constant_(self.reg_pred.bias, 0.0 if reg_max else 1.0)
        self.register_buffer("bins", torch.arange(reg_max + 1, dtype=torch.float32), persistent=False)

    def forward(self, x):
        """Class logits (B, H*W, C), side distances (B, H*W, 4) in pixels, bin logits (B, H*W, 4, R+1)."""
        x = self.stem(x)
        cls = self.cls_pred(self.cls_conv(x)).flatten(2).transpose(1, 2)  # (B, H*W, C)
        reg = self.reg_pred(self.reg_conv(x))  # (B, 4 * (R + 1), H, W)
        if not self.reg_max:  # distances (left, top, right, bottom) from each anchor point, in pixels
            return cls, F.softplus(reg).flatten(2).transpose(1, 2) * self.stride, None
        logits = reg.flatten(2).transpose(1, 2).unflatten(-1, (4, self.reg_max + 1))  # (B, H*W, 4, R + 1)
        return cls, (logits.softmax(-1) @ self.bins) * self.stride, logits  # expectation over the bins


def anchor_points(size: int = IMAGE_SIZE, strides=STRIDES) -> torch.Tensor:
    """Centres of the grid cells of every level, in pixels, in the order the head emits them: (A, 2)."""
    points = []
    for s in strides:
        c = torch.arange(size // s, dtype=torch.float32) * s + s / 2
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        points.append(torch.stack([xx.flatten(), yy.flatten()], 1))
    return torch.cat(points)


class TinyDetector(nn.Module):
    """Backbone (strides 2..16) -> Rep-PAN neck (P3, P4) -> decoupled heads; returns (cls_logits, xyxy).

    With reg_max > 0 in training mode it returns (cls_logits, xyxy, bin_logits (B, A, 4, R+1), strides (A,)).
    """

    def __init__(self, block, num_classes=3, widths=(8, 16, 24, 32), size=IMAGE_SIZE, reg_max=0):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.backbone = nn.ModuleList([
            nn.Sequential(block(3, c1, 2)),                      # 32x32
            nn.Sequential(block(c1, c2, 2), block(c2, c2, 1)),   # 16x16
            nn.Sequential(block(c2, c3, 2), block(c3, c3, 1)),   # 8x8   -> P3
            nn.Sequential(block(c3, c4, 2), block(c4, c4, 1)),   # 4x4   -> P4
        ])  # fmt: skip
        # Rep-PAN: top-down (P4 -> P3) then bottom-up (N3 -> N4), RepVGG blocks after each concat.
        self.reduce = ConvBNAct(c4, c2)
        self.top_down = block(c2 + c3, c2, 1)
        self.down = block(c2, c2, 2)
        self.bottom_up = block(c2 + c2, c3, 1)
        self.reg_max = reg_max
        self.heads = nn.ModuleList(
            [
                DecoupledHead(block, c2, num_classes, 8, reg_max),
                DecoupledHead(block, c3, num_classes, 16, reg_max),
            ]
        )
        self.register_buffer("anchors", anchor_points(size), persistent=False)
        strides = [torch.full(((size // s) ** 2,), float(s)) for s in STRIDES]
        self.register_buffer("anchor_strides", torch.cat(strides), persistent=False)

    def forward(self, x):
        feats = []
        for stage in self.backbone:
            x = stage(x)
            feats.append(x)
        p3, p4 = feats[2], feats[3]
        r4 = self.reduce(p4)
        n3 = self.top_down(torch.cat([F.interpolate(r4, scale_factor=2.0, mode="nearest"), p3], 1))
        n4 = self.bottom_up(torch.cat([self.down(n3), r4], 1))
        outs = [head(f) for head, f in zip(self.heads, (n3, n4), strict=True)]
        cls = torch.cat([o[0] for o in outs], 1)
        dist = torch.cat([o[1] for o in outs], 1)
        boxes = torch.cat([self.anchors - dist[..., :2], self.anchors + dist[..., 2:]], -1)
        if self.reg_max and self.training:  # the DFL loss needs the bins and each anchor's stride
            return cls, boxes, torch.cat([o[2] for o in outs], 1), self.anchor_strides
        return cls, boxes


NECK_OUTPUTS = ("top_down", "bottom_up")  # the modules whose outputs feed the heads (strides 8 and 16)


def fit(net, X, gt_boxes, gt_labels, gt_mask, loss_fn, num_epochs=NUM_EPOCHS, lr=LR, batch_size=BATCH_SIZE,
        seed=0, teacher=None, feature_loss=None, feature_weight=1.0):  # fmt: skip
    """Train with AdamW + one-cycle LR and random horizontal flips; returns the loss of each epoch.

    With a teacher, feature_weight * feature_loss(student, teacher) on every neck output is added
    (feature distillation); the teacher stays frozen in eval mode.
    """
    if not (len(X) == len(gt_boxes) == len(gt_labels) == len(gt_mask)):
        raise ValueError(f"X and targets must have one row per image, got {len(X)}, {len(gt_boxes)}, "
                         f"{len(gt_labels)}, {len(gt_mask)}")  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = num_epochs * ((len(X) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    size = X.shape[-1]
    history, feats, handles = [], {}, []
    if teacher is not None:
        if feature_loss is None:
            raise ValueError("a teacher needs a feature_loss(student_features, teacher_features)")
        teacher.eval()
        for role, model in (("student", net), ("teacher", teacher)):
            for name in NECK_OUTPUTS:
                hook = lambda m, i, out, key=(role, name): feats.__setitem__(key, out)  # noqa: E731
                handles.append(getattr(model, name).register_forward_hook(hook))
    net.train()
    for _ in range(num_epochs):
        order, total = torch.randperm(len(X), generator=generator), 0.0
        for idx in order.split(batch_size):
            xb, boxes = X[idx], gt_boxes[idx].clone()
            flip = torch.rand(len(idx), generator=generator) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            boxes[flip] = torch.stack([size - boxes[flip][..., 2], boxes[flip][..., 1],
                                       size - boxes[flip][..., 0], boxes[flip][..., 3]], -1)  # fmt: skip
            cls, pred, *dfl = net(xb)  # dfl: (bin logits, anchor strides) from a net with reg_max > 0
            loss = loss_fn(cls, pred, net.anchors, boxes, gt_labels[idx], gt_mask[idx], *dfl)
            if teacher is not None:
                with torch.no_grad():
                    teacher(xb)
                distill = sum(feature_loss(feats["student", n], feats["teacher", n]) for n in NECK_OUTPUTS)
                loss = loss + feature_weight * distill
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append(total / len(X))
    for handle in handles:
        handle.remove()
    net.eval()
    return history


def postprocess(scores, boxes, conf_threshold=0.05, iou_threshold=0.5, max_det=30):
    """Per image: keep scores > conf_threshold, class-wise NMS (torchvision.ops.batched_nms).

    scores (B, A, C) probabilities, boxes (B, A, 4). Returns a list of (boxes, scores, labels) per image.
    """
    results = []
    for s, b in zip(scores, boxes, strict=True):
        anchor, label = (s > conf_threshold).nonzero(as_tuple=True)
        kb, ks = b[anchor], s[anchor, label]
        keep = torchvision.ops.batched_nms(kb, ks, label, iou_threshold)[:max_det]
        results.append((kb[keep], ks[keep], label[keep]))
    return results


@torch.no_grad()
def predict(net, X, batch_size=256, **kwargs):
    """Run the net in eval mode and post-process: a list of (boxes, scores, labels) per image."""
    net.eval()
    results = []
    for xb in X.split(batch_size):
        cls, boxes = net(xb)
        results += postprocess(cls.sigmoid(), boxes, **kwargs)
    return results


def train_or_load(path, block, loss_fn, seed=0):
    """Load the trained detector's state from path, or train it with the shared recipe and save it there.

    Returns (net in eval mode, training-loss history or None when loaded).
    """
    path = Path(path)
    torch.manual_seed(seed)
    if path.is_file():
        net = TinyDetector(block)
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval(), None
    X, gt_boxes, gt_labels, gt_mask = make_shapes(TRAIN_IMAGES, seed=seed)
    torch.manual_seed(seed)
    net = TinyDetector(block)
    history = fit(net, X, gt_boxes, gt_labels, gt_mask, loss_fn, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net.eval(), history


def _self_check():
    X, boxes, labels, mask = make_shapes(4, seed=1)
    assert X.shape == (4, 3, IMAGE_SIZE, IMAGE_SIZE) and mask.any(1).all()
    net = TinyDetector(lambda i, o, s: ConvBNAct(i, o, 3, s)).eval()
    cls, pred = net(X)
    assert cls.shape == (4, len(anchor_points()), len(CLASSES)) and pred.shape[:2] == cls.shape[:2]
