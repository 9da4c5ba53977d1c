"""Cross-attention between the masked-face features and the reference-face features (L-Net encoder).

Queries *and keys* come from the masked input, values from the reference: the
input decides where to look, the reference supplies the appearance. Index-based
submodule names (``layers.0.0.fn.to_q``, ``fn.net.3``) follow the official checkpoint.
"""
from __future__ import annotations

import math

import torch
from torch import nn

_GELU_C = math.sqrt(2.0 / math.pi)


class TanhGELU(nn.Module):
    """GELU, tanh approximation, written out as in the official code."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1 + torch.tanh(_GELU_C * (x + 0.044715 * torch.pow(x, 3))))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.to_q(x)), self._heads(self.to_k(x)), self._heads(self.to_v(y))
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2)
        return self.to_out(out.reshape(out.shape[0], out.shape[1], -1))


class _DualNormAttention(nn.Module):
    def __init__(self, dim: int, attention: CrossAttention) -> None:
        super().__init__()
        self.normx = nn.LayerNorm(dim)
        self.normy = nn.LayerNorm(dim)
        self.fn = attention

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(self.normx(x), self.normy(y))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        # Identity keeps the second Linear at index 3 (the official net has dropouts there)
        self.net = nn.Sequential(nn.Linear(dim, hidden), TanhGELU(), nn.Identity(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _NormFeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = _FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class CrossTransformer(nn.Module):
    """forward(x, y) on feature maps (B, C, H, W) -> (B, C, H, W); pre-norm residual layers."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([_DualNormAttention(dim, CrossAttention(dim, heads, dim_head)),
                           _NormFeedForward(dim, mlp_dim)])
            for _ in range(depth))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        y = y.flatten(2).transpose(1, 2)
        for attend, feed in self.layers:
            x = attend(x, y) + x
            x = feed(x) + x
        return x.transpose(1, 2).reshape(b, c, h, w)


class PassThrough(nn.Module):
    """The no-attention slot of the shallow encoder levels: returns ``x``."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x
