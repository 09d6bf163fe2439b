# rollout_add_test(NAME SOURCES src... [LIBS lib...] [TIMEOUT s] [LABELS l...] [ARGS a...])
# One cmocka test binary per module. Exit code 77 means "skipped" (missing privilege or
# tool), every test has a TIMEOUT, and labels split fast unit tests from integration ones
# ("unit" is what the sanitizer pass in .ci/run runs).
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
# Under TSan, reports from inside uninstrumented libzmq are suppressed (tests/tsan.supp).
set(ROLLOUT_TEST_ENV "ROLLOUT_SOURCE_DIR=${PROJECT_SOURCE_DIR};ROLLOUT_BINARY_DIR=${PROJECT_BINARY_DIR}")
if(ROLLOUT_SANITIZE STREQUAL "thread")
  list(APPEND ROLLOUT_TEST_ENV "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp second_deadlock_stack=1")
endif()

function(rollout_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE rollout_flags PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77 LABELS "${T_LABELS}"
    ENVIRONMENT "${ROLLOUT_TEST_ENV}")
endfunction()

# rollout_add_script_test(NAME COMMAND cmd... [TIMEOUT s] [LABELS l...])
# A test that is a script or program run as is (pytest, promtool, shell checks).
function(rollout_add_script_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS integration)
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77 LABELS "${T_LABELS}"
    ENVIRONMENT "${ROLLOUT_TEST_ENV}")
endfunction()
