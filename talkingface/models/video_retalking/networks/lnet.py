"""L-Net: lip-sync generator at 96x96.

Inputs: a mel chunk (B, 1, 80, 16) and a face stack (B, 6, 96, 96) in [0, 1]
= [masked target (lower half zeroed) | reference]. Two spectral-normed conv
pyramids encode the two images; the deepest level cross-attends input to
reference; an FFC decoder conditioned on the audio code (ADAIN) paints the
mouth. Attribute names follow the official ``LNet.pth``.
"""
from __future__ import annotations

import torch
from torch import nn

from talkingface.models.video_retalking.networks.blocks import ConvNormAct, FinalConv, SkipDecoder
from talkingface.models.video_retalking.networks.ffc import FFCResBlocks
from talkingface.models.video_retalking.networks.transformer import CrossTransformer, PassThrough

_SLOPE = 0.1


class AudioConv(nn.Module):
    """Conv + BatchNorm (+ identity residual) + ReLU: the Wav2Lip audio block (keys ``conv_block.0/1``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int | tuple[int, int], padding: int,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return torch.relu(out)


def audio_encoder(descriptor_nc: int = 512) -> nn.Sequential:
    """Mel chunk (B, 1, 80, 16) -> audio code (B, descriptor_nc, 1, 1)."""
    spec = [  # (cin, cout, kernel, stride, padding, residual)
        (1, 32, 3, 1, 1, False), (32, 32, 3, 1, 1, True), (32, 32, 3, 1, 1, True),
        (32, 64, 3, (3, 1), 1, False), (64, 64, 3, 1, 1, True), (64, 64, 3, 1, 1, True),
        (64, 128, 3, 3, 1, False), (128, 128, 3, 1, 1, True), (128, 128, 3, 1, 1, True),
        (128, 256, 3, (3, 2), 1, False), (256, 256, 3, 1, 1, True),
        (256, 512, 3, 1, 0, False), (512, descriptor_nc, 1, 1, 0, False),
    ]
    return nn.Sequential(*(AudioConv(*row) for row in spec))


class VisualEncoder(nn.Module):
    """Twin pyramids (masked input, reference); cross-attention from level 2 on."""

    def __init__(self, image_nc: int, ngf: int, max_nc: int, layers: int, spectral: bool) -> None:
        super().__init__()
        self.layers = layers
        kw = dict(slope=_SLOPE, spectral=spectral)
        self.first_inp = ConvNormAct(image_nc, ngf, 7, **kw)
        self.first_ref = ConvNormAct(image_nc, ngf, 7, **kw)
        for i in range(layers):
            cin, cout = min(ngf * 2 ** i, max_nc), min(ngf * 2 ** (i + 1), max_nc)
            attention = PassThrough() if i < 2 else CrossTransformer(2 ** (i + 1) * ngf, 2, 4, ngf, ngf * 4)
            self.add_module(f"ca{i}", attention)
            self.add_module(f"ref_down{i}", ConvNormAct(cin, cout, 3, pool=True, **kw))
            self.add_module(f"inp_down{i}", ConvNormAct(cin, cout, 3, pool=True, **kw))

    def forward(self, masked: torch.Tensor, ref: torch.Tensor) -> list[torch.Tensor]:
        x, r = self.first_inp(masked), self.first_ref(ref)
        feats = [x]
        for i in range(self.layers):
            x = getattr(self, f"inp_down{i}")(x)
            r = getattr(self, f"ref_down{i}")(r)
            x = getattr(self, f"ca{i}")(x, r)
            # the deepest level also carries the reference features to the decoder
            feats.append(x if i < self.layers - 1 else torch.cat([x, r], dim=1))
        return feats


class LipDecoder(SkipDecoder):
    """FFC-ADAIN residual stacks + nearest upsampling + skip convs -> sigmoid image."""

    def __init__(self, image_nc: int, feature_nc: int, ngf: int, max_nc: int, layers: int, num_blocks: int,
                 spectral: bool) -> None:
        super().__init__()
        self.layers = layers
        kw = dict(slope=_SLOPE, spectral=spectral)
        for i in reversed(range(layers)):
            cin = ngf * 2 ** (i + 1) * 2 if i == layers - 1 else min(ngf * 2 ** (i + 1), max_nc)
            cout = min(ngf * 2 ** i, max_nc)
            self.add_module(f"up{i}", ConvNormAct(cin, cout, 3, upsample=True, **kw))
            self.add_module(f"res{i}", FFCResBlocks(num_blocks, cin, feature_nc))
            self.add_module(f"jump{i}", ConvNormAct(cout, cout, 3, **kw))
        self.final = FinalConv(cout, image_nc, spectral=spectral, activation="sigmoid")


def fold_time(x: torch.Tensor, time_dim: int) -> torch.Tensor:
    """(B, ..., T at ``time_dim``, ...) -> (T*B, ...), time-major like the official code."""
    x = x.movedim(time_dim, 0)
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def unfold_time(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(T*B, C, H, W) -> (B, C, T, H, W)."""
    return x.reshape(-1, batch, *x.shape[1:]).permute(1, 2, 0, 3, 4)


class LNet(nn.Module):
    """forward(audio (B,1,80,16), face (B,6,96,96) in [0,1]) -> (B,3,96,96) in [0,1].

    Also accepts the time-sequence form: audio (B,T,1,80,16), face (B,6,T,96,96)
    -> (B,3,T,96,96).
    """

    def __init__(self, image_nc: int = 3, descriptor_nc: int = 512, layer: int = 3, base_nc: int = 64,
                 max_nc: int = 512, num_res_blocks: int = 9, use_spect: bool = True) -> None:
        super().__init__()
        self.descriptor_nc = descriptor_nc
        self.encoder = VisualEncoder(image_nc, base_nc, max_nc, layer, use_spect)
        self.decoder = LipDecoder(image_nc, descriptor_nc, base_nc, max_nc, layer, num_res_blocks, use_spect)
        self.audio_encoder = audio_encoder(descriptor_nc)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        batch = audio_sequences.shape[0]
        sequence = face_sequences.dim() > 4
        if sequence:
            audio_sequences = fold_time(audio_sequences, 1)
            face_sequences = fold_time(face_sequences, 2)
        masked, ref = torch.split(face_sequences, 3, dim=1)
        out = self.decoder(self.encoder(masked, ref), self.audio_encoder(audio_sequences))
        return unfold_time(out, batch) if sequence else out
