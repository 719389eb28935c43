"""A method's map while its path is walked: the engine's running sum as plain data for a front end.

``explain`` calls its ``watch`` at every shown path position from inside the walk; the explorer's method
threads hand each snapshot, as a ``LiveMap``, to the thread that streams the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from magig_core.attribution import method_spec
from magig_core.attribution.path_record import PathSnapshot
from magig_core.viz import to_uint8


@dataclass(frozen=True)
class LiveMap:
    """One method's running map at one shown path position (first image of the batch), numpy on the CPU."""

    method: str
    t: float  # path position of the point just walked
    done: int  # points walked
    total: int  # points on the path
    image: np.ndarray | None  # uint8 [H,W,3] the path image there
    partial: np.ndarray  # float32 [3,H,W] the attribution collected so far (the final map at the walk's end)
    collected_t: np.ndarray  # [k] path positions walked so far, in walk order
    collected: np.ndarray  # [k] signed sum of the map collected by each of them

    @property
    def label(self) -> str:
        return method_spec(self.method).label


def live_map(method: str, snapshot: PathSnapshot) -> LiveMap:
    return LiveMap(
        method=method, t=snapshot.t, done=snapshot.done, total=snapshot.total,
        image=to_uint8(snapshot.image[0]) if snapshot.image is not None else None,
        partial=snapshot.partial[0].detach().float().cpu().numpy(),
        collected_t=snapshot.collected_t.numpy(), collected=snapshot.collected[0].detach().cpu().numpy(),
    )
