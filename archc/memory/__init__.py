"""The static memory planner (`archc mem`): what training or running a compiled spec holds in memory, from the graph
alone (no torch): weights, gradients and optimizer state exactly, the tensors autograd saves for the backward pass from
each op's rule (:meth:`archc.ops.base.Op.saved_for_backward`), the inference peak from liveness over the schedule, and
the largest batch that fits a memory budget."""
