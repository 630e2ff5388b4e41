"""What the patient sees and hears: a status light, a small display, a spoken sentence
(docs/feedback.md).

The hub feeds :class:`~gateway.feedback.component.Feedback` with the events of
:mod:`gateway.feedback.events` through ``Feedback.notify``, by way of
:class:`~gateway.feedback.hubtap.FeedbackTap`; nothing here is on the path of a reading.
This package imports nothing itself: a hub without ``[feedback]`` loads only the tap.
"""
