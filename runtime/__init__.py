"""The shared model runtime below rollout, teacher_server and trainer.

Model loading (`hf_compat`), log-probabilities with transformers (`hf_scoring`), chat prompts and
vision placeholder ids (`prompting`), the vLLM engine environment and log filters (`vllm_env`,
`log_filters`), weight checksums (`checksums`), the standalone weight-broadcast group
(`collective`), the cost-balanced split of a batch across workers (`partition`) and the base of
the rollout, teacher and learner actor groups (`actor_group`). It imports only `tvg` and the
libraries, never a package above it.
"""
