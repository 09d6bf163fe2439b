# What `make install` (cmake --install) puts on a machine besides the libraries and
# programs: RUNPATHs that find the installed librollout, the Python package (told where
# that library is), the example configs, the systemd units and their users.

# Installed programs find librollout next to them, without LD_LIBRARY_PATH or ldconfig.
foreach(t rolloutctl rollout-gateway rollout-bench rolloutd rollout-pool)
  if(TARGET ${t})
    set_target_properties(${t} PROPERTIES INSTALL_RPATH "\$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
  endif()
endforeach()

# The Python package, into the directory the system python3 searches for this prefix
# (Debian: lib/python3.X/dist-packages under /usr/local), with rollout/_install.py naming
# the installed librollout so no ROLLOUT_LIBRARY is needed.
find_program(ROLLOUT_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(ROLLOUT_PYTHON3 python3)
if(ROLLOUT_PYTHON3 AND TARGET rollout)
  execute_process(COMMAND ${ROLLOUT_PYTHON3} -c
    "import sys, sysconfig; print('lib/python%d.%d/%s' % (sys.version_info[0], sys.version_info[1], 'dist-packages' if sysconfig.get_default_scheme() == 'posix_local' else 'site-packages'))"
    OUTPUT_VARIABLE _rollout_pydir OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(ROLLOUT_PYTHON_DIR "${_rollout_pydir}" CACHE STRING "Where make install puts the Python package (relative: to the prefix)")
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/client/python/rollout DESTINATION ${ROLLOUT_PYTHON_DIR}
    PATTERN __pycache__ EXCLUDE)
  install(CODE "
    set(_p \"\${CMAKE_INSTALL_PREFIX}\")
    file(WRITE \"\$ENV{DESTDIR}\${_p}/${ROLLOUT_PYTHON_DIR}/rollout/_install.py\"
      \"# Written by make install: the librollout installed with this package.\\nLIBRARY = \\\"\${_p}/${CMAKE_INSTALL_LIBDIR}/librollout.so.${PROJECT_VERSION_MAJOR}\\\"\\n\")")
endif()

# Configs: every shipped file as an example, and configs/local.yaml as the daemons'
# configuration (/etc/rolloutd for the prefixes /usr and /usr/local, else PREFIX/etc/rolloutd),
# never over an existing one. The units name the installed programs and that directory.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/rolloutd/configs
  FILES_MATCHING PATTERN "*.yaml")
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/rolloutd.sysusers DESTINATION lib/sysusers.d RENAME rolloutd.conf)
install(CODE "
  set(_p \"\${CMAKE_INSTALL_PREFIX}\")
  if(_p STREQUAL \"/usr\" OR _p STREQUAL \"/usr/local\")
    set(_conf /etc/rolloutd)
  else()
    set(_conf \"\${_p}/etc/rolloutd\")
  endif()
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${_conf}\")
  foreach(_f rolloutd.yaml pool.yaml)
    if(NOT EXISTS \"\$ENV{DESTDIR}\${_conf}/\${_f}\")
      message(STATUS \"Installing: \$ENV{DESTDIR}\${_conf}/\${_f}\")
      file(COPY_FILE \"${PROJECT_SOURCE_DIR}/configs/local.yaml\" \"\$ENV{DESTDIR}\${_conf}/\${_f}\")
      file(CHMOD \"\$ENV{DESTDIR}\${_conf}/\${_f}\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
    endif()
  endforeach()
  foreach(_u rolloutd rollout-pool rollout-gateway)
    file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/\${_u}.service\" _t)
    string(REPLACE \"/usr/local/bin/\" \"\${_p}/${CMAKE_INSTALL_BINDIR}/\" _t \"\${_t}\")
    string(REPLACE \"/etc/rolloutd\" \"\${_conf}\" _t \"\${_t}\")
    message(STATUS \"Installing: \$ENV{DESTDIR}\${_p}/lib/systemd/system/\${_u}.service\")
    file(WRITE \"\$ENV{DESTDIR}\${_p}/lib/systemd/system/\${_u}.service\" \"\${_t}\")
  endforeach()
  # The units' users and groups, on this machine (not when staging into DESTDIR).
  if(\"\$ENV{DESTDIR}\" STREQUAL \"\" AND NOT \"\$ENV{ROLLOUT_INSTALL_NO_USERS}\")
    find_program(_sysusers systemd-sysusers)
    if(_sysusers)
      execute_process(COMMAND \${_sysusers} \"\${_p}/lib/sysusers.d/rolloutd.conf\" RESULT_VARIABLE _rc)
    else()
      execute_process(COMMAND sh -c \"getent group rollout >/dev/null || groupadd -r rollout; getent passwd rolloutd >/dev/null || useradd -r -M -d / -s /usr/sbin/nologin -G rollout rolloutd\" RESULT_VARIABLE _rc)
    endif()
    if(NOT _rc EQUAL 0)
      message(WARNING \"could not create the user rolloutd and the group rollout (not root?): the units need them\")
    endif()
  endif()
  # The config holds secrets once CURVE is on: readable by root and group rollout only.
  execute_process(COMMAND sh -c \"getent group rollout >/dev/null && chgrp rollout '\$ENV{DESTDIR}\${_conf}/rolloutd.yaml'\" OUTPUT_QUIET ERROR_QUIET)
")
