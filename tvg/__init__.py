"""The temporal video grounding task.

Data formats, video decoding, prompts, answer parsing, rewards and metrics.
"""
