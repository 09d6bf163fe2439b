# Config loaders of both daemons (RELIABILITY 36).
if(TARGET rolloutd_config AND TARGET rollout_poold)
  rollout_fuzz_target(config_fuzz LIBS rolloutd_config rollout_poold)
  target_include_directories(config_fuzz_replay PRIVATE ${PROJECT_SOURCE_DIR}/coordinator)
  if(TARGET config_fuzz_fuzzer)
    target_include_directories(config_fuzz_fuzzer PRIVATE ${PROJECT_SOURCE_DIR}/coordinator)
  endif()
endif()
