"""The ratelab softswitch (SIP B2BUA), built in the switch-core issue; never imports ratelab.

Built so far: the configuration loader (:mod:`switch.config`, ``python -m switch check``).
"""

from switch.config import ConfigError, SwitchConfig, load_config, load_config_text

__all__ = ["ConfigError", "SwitchConfig", "load_config", "load_config_text"]
