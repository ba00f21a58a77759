# decoder: bindings (to be written)
