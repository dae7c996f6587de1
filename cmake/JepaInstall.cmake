# Install rules and the CMake package of jepa (included by the top-level CMakeLists.txt).
#
#   cmake --install <build> --prefix <prefix>
#     <prefix>/include/jepa/...                      the headers (the library is header-only)
#     <prefix>/share/cmake/jepa/jepaConfig.cmake     find_package(jepa CONFIG) entry point
#     <prefix>/share/cmake/jepa/jepaConfigVersion.cmake   SameMinorVersion, architecture-independent
#     <prefix>/share/cmake/jepa/jepaTargets.cmake    the exported jepa::jepa target
#     <prefix>/share/doc/jepa/LICENSE
#
# The package is relocatable: every installed path is relative to the config file's own location,
# and nothing that depends on the build machine (the BLAS library's absolute path, FFmpeg, CUDA) is
# baked into the exported target; the config looks those up again on the consumer's machine.
# JEPA_INSTALL_CMAKEDIR moves the config files (vcpkg wants share/jepa; see ports/jepa/portfile.cmake).
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(JEPA_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/jepa" CACHE STRING
    "Where `cmake --install` puts jepaConfig.cmake (relative to the install prefix)")

# Header by header (not install(DIRECTORY)): a folder without headers must not become an empty
# directory in the package (vcpkg's post-build checks reject those).
file(GLOB_RECURSE _jepa_public_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/include
     ${PROJECT_SOURCE_DIR}/include/jepa/*.hpp ${PROJECT_SOURCE_DIR}/include/jepa/*.cuh
     ${PROJECT_SOURCE_DIR}/include/jepa/*.h ${PROJECT_SOURCE_DIR}/include/jepa/*.inc)
foreach(_h IN LISTS _jepa_public_headers)
  get_filename_component(_d ${_h} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/include/${_h} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${_d})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})

install(TARGETS jepa EXPORT jepaTargets)
install(EXPORT jepaTargets NAMESPACE jepa:: DESTINATION ${JEPA_INSTALL_CMAKEDIR})

# What the build used, recorded for the config file: the consumer's find_package repeats the same
# choices on its own machine (OpenMP, oneDNN and the BLAS are optional; Eigen is required).
set(JEPA_PACKAGE_USES_OPENMP OFF)
if(JEPA_USE_OPENMP AND OpenMP_CXX_FOUND)
  set(JEPA_PACKAGE_USES_OPENMP ON)
endif()
set(JEPA_PACKAGE_USES_BLAS OFF)
if(JEPA_USE_BLAS AND JEPA_BLAS_FOUND)
  set(JEPA_PACKAGE_USES_BLAS ON)
endif()
set(JEPA_PACKAGE_USES_ONEDNN OFF)
if(JEPA_USE_ONEDNN AND JEPA_ONEDNN_FOUND)
  set(JEPA_PACKAGE_USES_ONEDNN ON)
endif()
set(JEPA_PACKAGE_USES_NLOHMANN_JSON OFF)
if(TARGET nlohmann_json::nlohmann_json)
  set(JEPA_PACKAGE_USES_NLOHMANN_JSON ON)
endif()

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/jepaConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/jepaConfig.cmake
  INSTALL_DESTINATION ${JEPA_INSTALL_CMAKEDIR})
# Header-only: the same package serves 32- and 64-bit consumers (ARCH_INDEPENDENT). 0.x releases
# may break the API between minor versions, so only the same major.minor is compatible.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/jepaConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/jepaConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/jepaConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/JepaFindOneDnn.cmake
        DESTINATION ${JEPA_INSTALL_CMAKEDIR})
