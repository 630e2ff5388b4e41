"""The mapping of decoded values to observations: MDC codes, LOINC and UCUM units.

Kept apart from the wire codecs on purpose. The wire layouts follow the GATT Specification
Supplement and change when the Bluetooth SIG revises a characteristic; this mapping follows
the HL7 FHIR Personal Health Device IG and IEEE 11073-10101 and changes when those are
revised or a care team needs a code, for reasons that have nothing to do with bytes. Keeping
them in separate modules means a wire module never sees an :class:`~protocols.gatt.Observation`
(``tests/gatt/test_gatt_registry.py`` checks the imports), and a reviewer of a code-table
change reads only this package.

One module per profile, each registering its functions by value type with
:func:`protocols.gatt.registry.observations`; :func:`protocols.gatt.to_observations`
dispatches on the value's type and imports a profile's mapping module on its first value
(:func:`protocols.gatt.codec.load_all` imports them all). Importing this package alone
registers nothing.
"""
