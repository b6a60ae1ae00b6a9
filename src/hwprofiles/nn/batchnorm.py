"""Re-estimating batch-norm statistics on one chip instance (AdaBS).

A network trained with noise injection keeps, in its batch-norm layers, the activation
statistics of its *training* noise; evaluated with less noise (or on other hardware) those
statistics no longer fit and accuracy can collapse. Joshi et al. (Nat. Commun. 11, 2473,
2020) re-estimate them on the chip itself from a few batches of data (adaptive batch-norm
statistics update, "AdaBS"): batch norm runs in digital periphery, so this costs no
reprogramming.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Replace the running statistics of every batch-norm layer of ``model`` by those of
    ``batches`` (inputs only) passed through the model as it is now: the programmed chip
    instance, noise scale and inference time of a converted model, or the float model.

    Only the batch-norm layers run in training mode meanwhile, so the chip instance stays
    the one drawn by :func:`hwprofiles.program`. Statistics are a plain average over all the
    batches (not a moving one). Returns ``model``, in the mode it was in.

    >>> noisy = hwprofiles.to_noisy(model, "gaussian-additive")  # doctest: +SKIP
    >>> hwprofiles.program(noisy, seed=0)  # doctest: +SKIP
    >>> hwprofiles.recalibrate_batchnorm(noisy, [x for x, _ in islice(train_loader, 8)])  # doctest: +SKIP
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return model
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    saved = {m: {k: v.clone() for k, v in m.state_dict().items()} for m in norms}  # restored on failure
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    seen = 0
    try:
        device = next(model.parameters()).device
        for x in batches:
            model(x.to(device))
            seen += 1
        if seen == 0:
            raise ValueError("recalibrate_batchnorm needs at least one batch of inputs")
    except BaseException:
        for m in norms:
            m.load_state_dict(saved[m])
        raise
    finally:
        for m in norms:
            m.momentum = momenta[m]
        for module, training in modes.items():
            module.train(training)
    return model
