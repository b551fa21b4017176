"""The error raised when a video cannot be decoded (missing, empty, corrupt or unreadable)."""

from __future__ import annotations


class VideoError(RuntimeError):
    """A video could not be turned into frames.

    The message always names the path and what is wrong, so callers (rollout, teacher, learner,
    evaluation) can log it and count the sample as skipped instead of crashing a whole batch.
    """

    def __init__(self, path: str, problem: str) -> None:
        """Build the error for `path` with a short description of the `problem`."""
        self.path = str(path)
        self.problem = problem
        super().__init__(f"cannot decode video {self.path!r}: {problem}")

    def __reduce__(self):  # keep the two-argument constructor picklable (Ray, multiprocessing)
        return (type(self), (self.path, self.problem))
