# infer_ops: bindings (to be written)
