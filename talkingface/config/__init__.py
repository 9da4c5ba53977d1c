"""Layered configuration (see loader.py)."""
from talkingface.config.loader import Config, describe_keys, load_config, parse_cli_value

__all__ = ["Config", "describe_keys", "load_config", "parse_cli_value"]
