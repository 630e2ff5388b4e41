"""The region side: the reference receiver (verify, de-duplicate, FHIR) and its tools."""
