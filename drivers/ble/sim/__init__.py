"""The emulated BLE radio: bumble peripherals on an in-process link, reached through bleak.

Install with the ``sim`` extra. :class:`SimRadio` is one virtual adapter plus the air around
it; :func:`drivers.ble.backends.resolve_backend` turns it into bleak ``backend=`` classes.
"""
