# Defines the imported target jepa_onednn (oneDNN's C/C++ API: header oneapi/dnnl/dnnl.hpp, library
# dnnl) when both are found and the library was built for the OpenMP runtime (DNNL_CPU_RUNTIME OMP in
# dnnl_config.h): jepa's OpenMP regions and oneDNN's kernels then share one thread pool. Used by the
# build (cmake/JepaDependencies.cmake) and by the installed package (jepaConfig.cmake).
if(NOT TARGET jepa_onednn)
  find_path(JEPA_ONEDNN_INCLUDE_DIR NAMES oneapi/dnnl/dnnl.hpp)
  find_library(JEPA_ONEDNN_LIBRARY NAMES dnnl)
  if(JEPA_ONEDNN_INCLUDE_DIR AND JEPA_ONEDNN_LIBRARY)
    file(STRINGS "${JEPA_ONEDNN_INCLUDE_DIR}/oneapi/dnnl/dnnl_config.h" _jepa_dnnl_runtime
         REGEX "^#define DNNL_CPU_RUNTIME ")
    if(_jepa_dnnl_runtime MATCHES "DNNL_RUNTIME_OMP")
      add_library(jepa_onednn INTERFACE IMPORTED)
      set_target_properties(jepa_onednn PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${JEPA_ONEDNN_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${JEPA_ONEDNN_LIBRARY}")
    elseif(NOT jepa_FIND_QUIETLY)
      message(STATUS "jepa: ${JEPA_ONEDNN_LIBRARY} is not built for OpenMP (${_jepa_dnnl_runtime}); not used")
    endif()
    unset(_jepa_dnnl_runtime)
  endif()
endif()
