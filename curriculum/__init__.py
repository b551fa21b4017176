"""Samplers that choose which training samples a step sees (uniform, TVDF, difficulty-weighted)."""
