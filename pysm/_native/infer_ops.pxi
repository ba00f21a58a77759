# infer_ops: preprocessing / box decode / NMS bindings (to be written)
