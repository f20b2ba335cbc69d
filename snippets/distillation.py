"""Distillation losses: channel-wise distillation (CWD) of feature maps and self-distillation KL of logits.

Taught in: lessons/23_qat_and_distillation.ipynb. Needs: torch.
`channel_wise_distillation(student, teacher, tau)` turns every channel of an (N, C, H, W) feature map into a
probability distribution over its H*W locations (softmax with temperature tau) and returns the KL divergence
teacher -> student, averaged over channels: the student learns *where* each channel of the teacher fires.
`self_distillation_kl(student_logits, teacher_logits, tau)` is classic knowledge distillation over the last
dimension; YOLOv6 applies it with the fully trained model as its own teacher.
"""

import torch


def channel_wise_distillation(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """tau**2 * mean over (N, C) of KL(softmax(teacher / tau) || softmax(student / tau)) over H*W."""
    if student.shape != teacher.shape or student.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) feature maps of equal shape, got {tuple(student.shape)} "
                         f"and {tuple(teacher.shape)}")  # fmt: skip
    if tau <= 0:
        raise ValueError(f"temperature tau must be positive, got {tau}")
    s = student.flatten(2) / tau
    t = teacher.detach().flatten(2) / tau
    p_t = t.softmax(-1)
    kl = (p_t * (t.log_softmax(-1) - s.log_softmax(-1))).sum(-1)  # (N, C)
    return kl.mean() * tau**2


def self_distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 1.0):
    """tau**2 * KL(softmax(teacher / tau) || softmax(student / tau)) over the last dim, mean over the rest."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} "
                         "logits must have the same shape")  # fmt: skip
    if tau <= 0:
        raise ValueError(f"temperature tau must be positive, got {tau}")
    log_p_s = (student_logits / tau).log_softmax(-1)
    log_p_t = (teacher_logits.detach() / tau).log_softmax(-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    return kl.mean() * tau**2


def _self_check():
    x = torch.randn(2, 3, 4, 4)
    assert channel_wise_distillation(x, x).abs() < 1e-6
    assert self_distillation_kl(x, x + 1.0).abs() < 1e-6  # softmax ignores a constant shift
