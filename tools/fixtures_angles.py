"""tests/data/angles.json for tools/make_fixtures.py: rotation angles and their sin/cos.

For dk in {16, 256} and both theta conventions (torchscale's ``1/10000**linspace(0,1,dk/2)``,
checked against the angle buffer torchscale itself builds, and fla's
``1/10000**(arange(0,dk,2)/dk)``): theta in fp32 and float64, the fp32 argument
``float32(n)*theta`` at ANGLE_POSITIONS, torch's fp32 sin/cos of it, and the float64 truth
sin/cos(n*theta64).  It asserts that a fp32 angle times a Python int (torchscale's recurrent path)
gives exactly ``float32(n)*theta``, and logs how many of torch's fp32 sin/cos values are not the
correctly rounded fp32 result, and the error that comes from the fp32 argument per position.
"""

import numpy as np
import torch

from fixtures_common import F32, log, write_json
from fixtures_fla import fla_inv_freq
from torchscale_shim import install_timm_stub

install_timm_stub()
from torchscale.architecture.config import RetNetConfig  # noqa: E402


ANGLE_POSITIONS = [0, 1, 2, 255, 256, 257, 4097, 65535, 100000, 1000003, 16777217]


def make_angles(outdir):
    entries = []
    worst = {}
    ulp_stats = [0, 0, 0.0]  # values, not correctly rounded, max abs error
    for dk in (16, 256):
        for conv in ("linspace", "fla"):
            if conv == "linspace":
                theta = 1.0 / (10000 ** torch.linspace(0, 1, dk // 2, dtype=F32))
                theta64 = 1.0 / (10000.0 ** (np.arange(dk // 2, dtype=np.float64) / (dk // 2 - 1)))
                # the buffer torchscale stores is theta interleaved with itself
                assert torch.equal(RetNetDecoderAngle(dk), theta.repeat_interleave(2))
            else:
                theta = fla_inv_freq(dk)
                theta64 = 1.0 / (10000.0 ** (np.arange(0, dk, 2, dtype=np.float64) / dk))
            pos32 = torch.tensor(ANGLE_POSITIONS, dtype=torch.float64).to(F32)
            arg = pos32[:, None] * theta[None, :]  # fp32 product, as the references do
            # torchscale recurrent multiplies the fp32 angle by a Python int: same result
            for n, row in zip(ANGLE_POSITIONS, arg):
                assert torch.equal(theta * n, row)
            s32, c32 = torch.sin(arg), torch.cos(arg)
            P = np.array(ANGLE_POSITIONS, dtype=np.float64)[:, None]
            s64, c64 = np.sin(P * theta64[None, :]), np.cos(P * theta64[None, :])
            worst[(dk, conv)] = np.abs(s32.double().numpy() - s64).max(axis=1)  # per position
            # torch's fp32 sin/cos vs the correctly rounded fp32 value of sin/cos(fp32 argument)
            a64 = arg.double().numpy()
            for got, exact in ((s32, np.sin(a64)), (c32, np.cos(a64))):
                ulp_stats[0] += got.numel()
                ulp_stats[1] += int((got.numpy() != exact.astype(np.float32)).sum())
                ulp_stats[2] = max(ulp_stats[2], float(np.abs(got.double().numpy() - exact).max()))

            def L(t):
                return [[float(v) for v in r] for r in np.asarray(t, dtype=np.float64)]

            entries.append({
                "dk": dk,
                "convention": conv,
                "theta_formula": ("1/10000**linspace(0,1,dk/2) (torch fp32)" if conv == "linspace"
                                  else "1/10000**(arange(0,dk,2)/dk) (torch fp32)"),
                "theta": [float(v) for v in theta],
                "theta64": [float(v) for v in theta64],
                "arg_f32": L(arg.double().numpy()),
                "sin_f32": L(s32.double().numpy()),
                "cos_f32": L(c32.double().numpy()),
                "sin_true64": L(s64),
                "cos_true64": L(c64),
            })
    obj = {
        "description": ("Rotation angles. theta: fp32 values of each convention (length dk/2; torchscale's "
                        "stored angle buffer repeats each value twice, interleaved). arg_f32[p][i] = "
                        "float32(positions[p]) * theta[i] computed in fp32; sin_f32/cos_f32 = torch.sin/cos "
                        "of that fp32 argument (torch %s CPU); sin_true64/cos_true64 = sin/cos(n * theta64) "
                        "in float64 with theta64 the formula evaluated in float64. Note float32(16777217) = "
                        "16777216." % torch.__version__),
        "positions": ANGLE_POSITIONS,
        "entries": entries,
    }
    write_json(outdir / "angles.json", obj)
    log("[angles] torch fp32 sin/cos of the fp32 argument: %d of %d values differ from the correctly rounded "
        "fp32 result (max abs error vs exact %.1e)" % (ulp_stats[1], ulp_stats[0], ulp_stats[2]))
    log("[angles] max_i |sin_f32 - sin_true64| per position (fp32 argument vs float64 truth):")
    log("    %-14s" % "dk/convention" + "".join("%9d" % n for n in ANGLE_POSITIONS))
    for (dk, conv), w in worst.items():
        log("    %-14s" % ("%d/%s" % (dk, conv)) + "".join("%9.1e" % v for v in w))


def RetNetDecoderAngle(dk):
    """The angle buffer torchscale itself builds (H = 1 so that dk = D)."""
    args = RetNetConfig(decoder_embed_dim=dk, decoder_retention_heads=1, decoder_value_embed_dim=dk,
                        decoder_ffn_embed_dim=8, decoder_layers=1, vocab_size=4)
    from torchscale.architecture.retnet import RetNetRelPos
    return RetNetRelPos(args).angle
