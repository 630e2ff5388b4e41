"""The virtual rig: a local TLS broker, an emulated BLE radio with devices, and the receiver.

Used by ``make demo`` and by the tests; it composes the same drivers the field uses.
"""
