"""The ratelab softswitch (SIP B2BUA). Built in the switch-core issue; never imports ratelab."""

__all__: list[str] = []
