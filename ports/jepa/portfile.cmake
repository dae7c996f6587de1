# vcpkg port of jepa (header-only). As an overlay port it builds the checkout it lives in:
#   vcpkg install jepa --overlay-ports=<jepa checkout>/ports            (classic mode)
#   "vcpkg-configuration": { "overlay-ports": ["<jepa>/ports"] }        (manifest mode)
# A registry port would fetch a release instead of SOURCE_PATH below:
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/jepa REF "v${VERSION}" SHA512 <hash> HEAD_REF main)
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is enough
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    blas JEPA_USE_BLAS
    onednn JEPA_USE_ONEDNN
    cuda JEPA_ENABLE_CUDA
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DJEPA_INSTALL=ON
    -DJEPA_BUILD_TESTS=OFF
    -DJEPA_BUILD_EXAMPLES=OFF
    -DJEPA_BUILD_BENCHMARKS=OFF
    -DJEPA_INSTALL_CMAKEDIR=share/${PORT}
    -DCMAKE_DISABLE_FIND_PACKAGE_Doxygen=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME ${PORT} CONFIG_PATH share/${PORT})

# Header-only: no libraries, and the jepaConfig.cmake finds its dependencies itself.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
