"""Importers: models in other formats (ONNX, PyTorch, Darknet, Caffe, Ultralytics YAML) in, archc specs out.

Every importer parses its source into a :class:`~archc.importers.flat.FlatGraph` (one layer per source layer, archc op
names and fields, explicit inputs, each layer's origin in the source); one shared writer turns that into spec text.
"""
