"""Sub-commands of `python -m talkingface` that need their own argument parsing."""
