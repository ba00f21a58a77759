# tensor: bindings (to be written)
