"""A virtual BlueZ: the ``org.bluez`` D-Bus service on a private bus, over the emulated radio.

A fake of an outside system (bluetoothd), at the seam where the hub meets it: the system
D-Bus. It follows BlueZ's D-Bus API documents (``doc/org.bluez.*.rst`` in the BlueZ source)
and bluetoothd's behaviour where they are silent (cited in each module). With
``DBUS_SYSTEM_BUS_ADDRESS`` set to :attr:`PrivateBus.address`, bleak's own BlueZ backend
(the ``bluez`` backend, no ``backend=`` class) and the hub's pairing agent run unchanged
against the same emulated devices the ``sim`` backend uses.

* :mod:`.daemon`: the private ``dbus-daemon``;
* :mod:`.service`: ``org.bluez`` itself (Adapter1, discovery, devices);
* :mod:`.device`, :mod:`.gatt`, :mod:`.agents`: Device1, the GATT objects, AgentManager1;
* :mod:`.objects`: the ObjectManager / Properties plumbing.
"""

from drivers.ble.sim.vbluez.daemon import BusUnavailableError, PrivateBus, find_dbus_daemon
from drivers.ble.sim.vbluez.service import VirtualBlueZ

__all__ = ["BusUnavailableError", "PrivateBus", "VirtualBlueZ", "find_dbus_daemon"]
