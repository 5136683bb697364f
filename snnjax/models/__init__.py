"""Models: QKFormer (``qkformer``) and YOLOv5n (``yolo``), the spiking settings and unit builder they share
(``spiking``), and weight import/export: the official QKFormer (``convert``) and ultralytics' YOLOv5n
(``yolo_weights``), both walking ``state_dict``."""
