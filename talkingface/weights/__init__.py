"""Checkpoint files: manifest and download, seeded weights, the official|seeded|auto policy."""
