"""narhub sensor-board firmware (MicroPython). Spec: docs/protocols/sensor-link.md."""

VERSION = "0.1.0"
