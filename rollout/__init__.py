"""Student sampling: the step batch type, the vLLM engine, its Ray actor, a reference engine."""
