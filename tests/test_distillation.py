"""distillation: CWD and self-distillation KL against torch.nn.functional.kl_div."""

import pytest
import torch
import torch.nn.functional as F

from snippets.distillation import channel_wise_distillation, self_distillation_kl


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_cwd_matches_kl_div_per_channel(tau):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 5, 5, generator=g), torch.randn(2, 3, 5, 5, generator=g)
    log_q = F.log_softmax(s.reshape(6, 25) / tau, -1)
    p = F.softmax(t.reshape(6, 25) / tau, -1)
    expected = F.kl_div(log_q, p, reduction="batchmean") * tau**2  # sum over locations, mean over N*C
    torch.testing.assert_close(channel_wise_distillation(s, t, tau), expected)


def test_cwd_hand_case_and_gradient():
    # One channel, two locations: teacher (0, 0) -> p = (1/2, 1/2); student (log 3, 0) -> q = (3/4, 1/4).
    t = torch.zeros(1, 1, 1, 2)
    s = torch.tensor([[[[torch.log(torch.tensor(3.0)), 0.0]]]], requires_grad=True)
    expected = 0.5 * torch.log(torch.tensor(0.5 / 0.75)) + 0.5 * torch.log(torch.tensor(0.5 / 0.25))
    loss = channel_wise_distillation(s, t)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert s.grad is not None and s.grad[0, 0, 0, 0] > 0  # pushes the over-confident location down


def test_self_distillation_kl_matches_kl_div():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    expected = F.kl_div(F.log_softmax(s / 2, -1), F.softmax(t / 2, -1), reduction="batchmean") * 4
    torch.testing.assert_close(self_distillation_kl(s, t, tau=2.0), expected)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        channel_wise_distillation(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="tau must be positive"):
        self_distillation_kl(torch.zeros(2, 3), torch.zeros(2, 3), tau=0)
