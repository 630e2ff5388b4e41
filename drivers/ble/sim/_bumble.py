"""The one module that imports bumble; the emulated radio imports bumble names from here."""

from bumble.att import ATT_Error, Attribute
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.core import BaseBumbleError as CoreError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy
from bumble.hci import Address, HCI_Error
from bumble.host import Host
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, StreamPacketSource, Transport

__all__ = [
    "GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR",
    "UUID",
    "ATT_Error",
    "Address",
    "Advertisement",
    "AdvertisingData",
    "AsyncPipeSink",
    "Attribute",
    "Characteristic",
    "CharacteristicProxy",
    "CharacteristicValue",
    "Connection",
    "Controller",
    "CoreError",
    "Descriptor",
    "DescriptorProxy",
    "Device",
    "HCI_Error",
    "Host",
    "LocalLink",
    "PairingConfig",
    "PairingDelegate",
    "Peer",
    "Service",
    "ServiceProxy",
    "StreamPacketSource",
    "Transport",
    "open_transport",
]
