"""Measures any user can call: detection NMS and mAP under three rules (``detection``, ``nms``, ``ap``,
``matching``) and spike statistics (``spikes``)."""
