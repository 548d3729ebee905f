"""Building blocks of top-down instance models: boxes, NMS, anchors, RoIAlign, heads."""
