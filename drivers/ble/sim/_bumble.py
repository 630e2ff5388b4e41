"""The one module that imports bumble; the emulated radio imports bumble names from here."""

from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy
from bumble.hci import Address, HCI_Error
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

__all__ = [
    "UUID",
    "Address",
    "Advertisement",
    "AdvertisingData",
    "AsyncPipeSink",
    "Characteristic",
    "CharacteristicProxy",
    "CharacteristicValue",
    "Connection",
    "Controller",
    "DescriptorProxy",
    "Device",
    "HCI_Error",
    "Host",
    "LocalLink",
    "Peer",
    "Service",
    "ServiceProxy",
]
