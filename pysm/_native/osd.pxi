# osd: bindings (to be written)
