# common/: libcommon.a (config, log, addr, status HTTP, daemon glue).
common_DEPS := common
common_TESTS += test_config
common_TESTS += test_arena
common_TESTS += test_regress_common
