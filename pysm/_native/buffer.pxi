# buffer: bindings (to be written)
