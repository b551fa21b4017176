"""Objectives as pure tensor functions, DeepSpeed learners, weight export and checkpoints."""
