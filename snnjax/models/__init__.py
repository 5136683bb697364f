"""Models: QKFormer (``qkformer``) and YOLOv5n (``yolo``), the spiking settings and unit builder they share
(``spiking``), and weight import from the official QKFormer (``convert``)."""
