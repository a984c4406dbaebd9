"""Fair claims: how one batch of embedding work is shared among the tenants waiting for it.

A claim goes round-robin over the tenants in turn: each takes its oldest ready message,
then each its second, and so on, until the batch is full or nothing is left. With T
tenants waiting each takes about batch / T; one with fewer takes what it has and the
others share the rest. A tenant with a few messages waiting is so served within one
batch, however many another tenant has queued. Which tenant comes first is the claimer's
to say (the queue rotates it, so that with more tenants waiting than a batch holds, each
gets its turn).
"""

from __future__ import annotations

from collections.abc import Sequence


def round_robin_shares(ready: Sequence[int], batch: int) -> list[int]:
    """How many messages each tenant takes, in turn order, where ready[i] is how many the i-th
    tenant has waiting. A count capped at batch - (tenants waiting) + 1 is as good as the true
    one: no tenant can take more while each of the others takes one."""
    if batch < 0 or any(n < 0 for n in ready):
        raise ValueError("the batch and the counts of ready messages cannot be negative")
    shares = [0] * len(ready)
    left = batch
    waiting = [i for i, n in enumerate(ready) if n > 0]
    while left > 0 and waiting:
        each = left // len(waiting)
        if each == 0:  # a last, partial round: one more for the first in turn
            for i in waiting[:left]:
                shares[i] += 1
            break
        for i in waiting:  # `each` full rounds, in which a tenant with fewer runs out
            taken = min(each, ready[i] - shares[i])
            shares[i] += taken
            left -= taken
        waiting = [i for i in waiting if shares[i] < ready[i]]
    return shares
