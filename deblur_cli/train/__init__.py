"""Training and evaluation of the multi-scale network (Nah et al. 2017, official recipe).

One idea per module: ``data`` (where pairs come from), ``augment`` (what is done to them),
``losses`` and ``discriminator`` (what is optimised), ``trainer`` (the loop, checkpoints, DDP)
and ``metrics`` (PSNR/SSIM measured the way the published numbers were).
"""
