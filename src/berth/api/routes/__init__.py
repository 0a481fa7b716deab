"""Engine API routes, one module per endpoint group; each `register(router, backend, ...)` adds its
routes (paths without the version prefix, which the app strips) and calls only its backend."""
