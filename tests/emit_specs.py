"""Small specs both emitter tests compile and check (the PyTorch module against the IR, the ONNX file against the
module), so the two backends are exercised on exactly the same graphs.
"""

TRANSFORMER = """
name: transformer
inputs: {tokens: [6, 8], image: [8, 4, 5]}
outputs: [cls, mixed]
body:
  - layernorm: {id: ln, dims: 1, from: tokens}
  - multihead_attention: {id: attn, heads: 2}
  - drop_path: {id: dp, p: 0.1}
  - linear: {id: qk, out: 8, from: tokens}
  - matmul: {id: scores, from: [qk, dp], transpose_b: true}
  - mul_scalar: {value: 0.125}
  - softmax: {id: weights, axis: -1}
  - matmul: {id: mixed_tokens, from: [weights, attn]}
  - scaled_dot_product_attention: {from: [mixed_tokens, tokens, tokens], heads: 2, causal: true}
  - add_scalar: {value: 1.0}
  - select: {id: cls, index: 0}
  - layernorm: {id: ln2d, channels_first: true, eps: 1.0e-6, from: image}
  - permute: {axes: [1, 2, 0]}
  - roll: {shifts: [-1, 2], axes: [0, 1]}
  - zeropad: {p: [0, 1, 0, 2], axes: [0, 1]}
  - sum: {axes: [-1], keepdims: true}
  - expand: {id: mixed, shape: [-1, -1, 8]}
"""

MODEL_TENSORS = """
name: model_tensors
inputs: {tokens: [4, 8]}
body:
  - parameter: {id: class_token, shape: [1, 1, 8], init: normal, batch_axis: true}
  - concat: {from: [class_token, tokens], axis: 0}
  - parameter: {id: scale, shape: [1, 8], init: constant, value: 0.5}
  - mul: {from: [1, scale]}
  - buffer: {id: relative_position_index, kind: relative_position_index, window: [2, 2]}
  - add: {from: [3, 3]}
  - parameter: {id: table, shape: [9, 8], init: normal}
  - gather: {from: [table, relative_position_index]}
  - slice: {start: 1, end: 6}
  - add: {from: [5, 8]}
"""
