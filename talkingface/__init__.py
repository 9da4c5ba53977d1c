"""talkingface: VideoReTalking re-implemented as a plugin of a RecBole-style talking-face framework."""
__version__ = "0.1.0"
