"""Teacher scoring of student tokens: local workers, the pool, an HTTP service and its client.

- `TeacherConfig` (config.py): backend ("vllm", "hf", "remote"), model, top-k, temperature, pool
  size and resources.
- `ScoreItem` / `TokenScores` (items.py): what is scored and what comes back; `items_from_batch`
  and `fill_batch` connect them to `rollout.batch.RolloutBatch`.
- Backends: `VLLMScorer` (backend_vllm.py), `HFScorer` (backend_hf.py), `RemoteScorer` (client.py).
- `TeacherWorker` (worker.py, a Ray actor) and `TeacherPool` (pool.py).
- Start-up checks (checks.py) and the HTTP service (http_server.py, wire.py).
"""

from teacher_server.checks import TeacherMismatchError
from teacher_server.config import TeacherConfig
from teacher_server.items import (
    ScoreItem,
    TeacherInputError,
    TokenScores,
    fill_batch,
    items_from_batch,
)
from teacher_server.pool import TeacherPool, TeacherTimeoutError, TeacherWorkerError

__all__ = [
    "ScoreItem",
    "TeacherConfig",
    "TeacherInputError",
    "TeacherMismatchError",
    "TeacherPool",
    "TeacherTimeoutError",
    "TeacherWorkerError",
    "TokenScores",
    "fill_batch",
    "items_from_batch",
]
