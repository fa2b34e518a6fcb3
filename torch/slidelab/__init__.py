"""Slide Lab on PyTorch torch.distributed: the lab's end-to-end training run (gather, aggregator,
scatter, pseudo-loss, summed encoder gradients) with the same sampling, tiles, augmentation,
dropout masks, initial weights, optimizer and schedules as the TypeScript engine.

Process 0 holds the aggregator; processes 1..N are encoder replicas. Launch:

    torchrun --nproc_per_node N+1 -m slidelab.train <run dir> --out <dir>

The modules rng, sampler, tiles, augment and metrics use only the standard library and numpy
(no torch), so they can be checked against the TypeScript values without starting PyTorch.
"""

__version__ = "1"
