# imgproc: bindings (to be written)
