# meta: bindings (to be written)
