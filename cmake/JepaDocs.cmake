# API reference: Doxygen over include/jepa (the headers' `///` comments) with docs/index.md as the
# main page. Defines the target `jepa_docs` (not part of ALL) when Doxygen is found:
#   cmake --build <build> --target jepa_docs      ->  <build>/docs/api/html/index.html
# Doxyfile.in sets WARN_AS_ERROR = FAIL_ON_WARNINGS, so any warning fails the target (and the
# `docs_doxygen` test in tests/package/).
include_guard(GLOBAL)

find_package(Doxygen QUIET OPTIONAL_COMPONENTS dot)
set(JEPA_DOCS_AVAILABLE OFF)
if(DOXYGEN_FOUND)
  set(JEPA_DOCS_AVAILABLE ON)
  set(JEPA_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs/api)
  set(JEPA_DOCS_HAVE_DOT NO)
  set(JEPA_DOCS_DOT_PATH "")
  if(DOXYGEN_DOT_EXECUTABLE)  # class-inheritance diagrams (apt: graphviz)
    set(JEPA_DOCS_HAVE_DOT YES)
    get_filename_component(JEPA_DOCS_DOT_PATH "${DOXYGEN_DOT_EXECUTABLE}" DIRECTORY)
  endif()
  set(JEPA_DOXYFILE ${PROJECT_BINARY_DIR}/docs/Doxyfile)
  configure_file(${PROJECT_SOURCE_DIR}/Doxyfile.in ${JEPA_DOXYFILE} @ONLY)
  add_custom_target(jepa_docs
    COMMAND ${CMAKE_COMMAND} -E make_directory ${JEPA_DOCS_OUTPUT_DIR}
    COMMAND Doxygen::doxygen ${JEPA_DOXYFILE}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/docs
    COMMENT "Doxygen: API reference in ${JEPA_DOCS_OUTPUT_DIR}/html (warnings are errors)"
    VERBATIM)
  message(STATUS "jepa: API reference target jepa_docs (Doxygen ${DOXYGEN_VERSION}, dot: ${JEPA_DOCS_HAVE_DOT})")
else()
  message(STATUS "jepa: Doxygen not found; no jepa_docs target (apt: doxygen graphviz)")
endif()
