# package_install: `cmake --install` of the configured build tree into a staging prefix, which is then
# moved (the package must be relocatable), checked for its layout and for absolute paths.
#   cmake -DBUILD_DIR=<jepa build> -DSOURCE_DIR=<jepa source> -DWORK=<scratch dir> -P check_install.cmake
# Leaves the relocated prefix in <WORK>/prefix for the consumer tests (CTest fixture jepa_installed).
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/package_common.cmake)
file(REMOVE_RECURSE "${WORK}/stage" "${WORK}/prefix")
jepa_step("install" COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK}/stage)
file(RENAME "${WORK}/stage" "${WORK}/prefix")
set(P "${WORK}/prefix")
jepa_require_files(${P} include/jepa/jepa.hpp include/jepa/config.hpp include/jepa/models/jepa_presets.hpp
                   share/cmake/jepa/jepaConfig.cmake share/cmake/jepa/jepaConfigVersion.cmake
                   share/cmake/jepa/jepaTargets.cmake share/doc/jepa/LICENSE)
# Header-only: nothing architecture-specific may be installed.
foreach(d lib lib64 bin)
  if(EXISTS "${P}/${d}")
    message(FATAL_ERROR "header-only package installed ${P}/${d}")
  endif()
endforeach()
file(READ "${P}/share/cmake/jepa/jepaConfigVersion.cmake" version_file)
if(NOT version_file MATCHES "if\\(\"TRUE\"\\)[ \n]*return\\(\\)")  # ARCH_INDEPENDENT: the pointer-size check is skipped
  message(FATAL_ERROR "jepaConfigVersion.cmake is not ARCH_INDEPENDENT:\n${version_file}")
endif()
# Every installed header of the source tree is there.
file(GLOB_RECURSE src_headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/jepa/*.hpp"
     "${SOURCE_DIR}/include/jepa/*.inc")
list(LENGTH src_headers n)
jepa_require_files(${P}/include ${src_headers})
jepa_no_paths_in("${P}/share" "${SOURCE_DIR}" "${BUILD_DIR}" "${WORK}/stage")
message(STATUS "installed ${n} headers and the CMake package under ${P} (relocated from ${WORK}/stage)")
