# common/: shared library only (config, log, addr, status HTTP, program glue).
