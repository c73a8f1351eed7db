"""The names of the policy losses, in a module without torch.

``digiq-train --loss`` needs them for its choices, and ``digiq --help`` must not pay for
importing torch (about 1.4 s) to print them.
"""

from __future__ import annotations

__all__ = ["POLICY_LOSSES", "BC_LOSSES"]

#: Losses of the ``policy`` stage: Best-of-N extraction (Digi-Q) and the published baselines.
POLICY_LOSSES = ("bestofn", "sft", "filtered-bc", "awr", "pg")
#: Losses of the ``bc`` stage: every step, or the steps of successful episodes only.
BC_LOSSES = ("sft", "filtered-bc")
