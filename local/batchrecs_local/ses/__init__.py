"""The SES v2 contact import jobs moto lacks (``emulator``)."""
