# package_conan: `conan create` of conanfile.py with test_package/, end to end, with no remote.
#   cmake -DCONAN=<conan> -DSOURCE_DIR=<jepa source> -DWORK=<scratch> -DCXX=<compiler> -P check_conan.cmake
# A private CONAN_HOME under WORK (nothing touches ~/.conan2), Conan Center removed. The requirements
# keep their Conan Center names (eigen/3.4.0, nlohmann_json/3.11.3); the profile's [replace_requires]
# points them at local recipes that wrap the system's headers (tests/package/conan_system).
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/package_common.cmake)

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(ENV{CONAN_HOME} ${WORK}/conan_home)
set(ENV{CXX} ${CXX})
set(ENV{CONAN_NON_INTERACTIVE} 1)

jepa_step("conan version" COMMAND ${CONAN} --version EXPECT_OUTPUT "Conan version 2\\.")
message(STATUS "${JEPA_STEP_OUTPUT}")
jepa_step("conan profile detect" COMMAND ${CONAN} profile detect --force)
jepa_step("conan remote remove conancenter" COMMAND ${CONAN} remote remove conancenter)

# The requirements of the recipe, as Conan Center names them; each is wrapped from the system.
file(READ ${SOURCE_DIR}/conanfile.py recipe)
string(REGEX MATCHALL "self\\.requires\\(\"[a-z0-9_]+/" reqs "${recipe}")
set(replace "")
foreach(r IN LISTS reqs)
  string(REGEX REPLACE "self\\.requires\\(\"([a-z0-9_]+)/" "\\1" name "${r}")
  jepa_step("export system wrapper ${name}/system"
            COMMAND ${CONAN} export ${CMAKE_CURRENT_LIST_DIR}/conan_system --name ${name} --version system)
  string(APPEND replace "${name}/*: ${name}/system\n")
endforeach()
if(NOT replace)
  message(FATAL_ERROR "found no self.requires(...) in conanfile.py")
endif()

# Without the replacement the graph cannot resolve (no remote): proves the wrappers are what is used.
jepa_step("graph without [replace_requires] fails" COMMAND ${CONAN} graph info ${SOURCE_DIR} -s compiler.cppstd=20
          EXPECT_FAIL EXPECT_OUTPUT "eigen/3\\.4\\.0")

file(WRITE ${WORK}/profile "include(default)\n\n[settings]\ncompiler.cppstd=20\nbuild_type=Release\n\n"
                           "[replace_requires]\n${replace}\n[conf]\ntools.build:jobs=2\n"
                           "tools.cmake.cmaketoolchain:generator=Unix Makefiles\n")
file(READ ${WORK}/profile profile)
message(STATUS "profile:\n${profile}")

# test_package is copied out of the source tree: conan builds it in place.
file(COPY ${SOURCE_DIR}/test_package DESTINATION ${WORK})
file(REMOVE_RECURSE ${WORK}/test_package/build)
jepa_step("conan create (package + test_package)"
          COMMAND ${CONAN} create ${SOURCE_DIR} -pr:a ${WORK}/profile --build=missing -tf ${WORK}/test_package
          EXPECT_OUTPUT "jepa [0-9]+\\.[0-9]+\\.[0-9]+: features \\(1, 8, 64\\)\n")
string(REGEX MATCH "jepa [0-9.]+: features[^\n]*" line "${JEPA_STEP_OUTPUT}")
message(STATUS "test_package: ${line}")
string(REGEX MATCH "Replaced requires[^\n]*(\n +[^\n]+)*" replaced "${JEPA_STEP_OUTPUT}")
if(replaced)
  message(STATUS "${replaced}")
endif()

# The package holds the headers and the licence, nothing else, under one package id for every
# configuration (package_id() clears the settings: header-only).
jepa_step("conan list" COMMAND ${CONAN} list "jepa/*:*" --format=json)
string(REGEX MATCHALL "\"([0-9a-f]+)\": {[ \n]*\"info\": {}" ids "${JEPA_STEP_OUTPUT}")
list(LENGTH ids n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one settings-free jepa package, found ${n}:\n${JEPA_STEP_OUTPUT}")
endif()
string(REGEX REPLACE "\"([0-9a-f]+)\".*" "\\1" id "${ids}")
string(REGEX MATCH "jepa/[0-9.]+" ref "${JEPA_STEP_OUTPUT}")
jepa_step("conan cache path" COMMAND ${CONAN} cache path ${ref}:${id})
string(STRIP "${JEPA_STEP_OUTPUT}" pkg)
jepa_require_files(${pkg} include/jepa/jepa.hpp include/jepa/models/jepa_presets.hpp licenses/LICENSE)
foreach(d lib bin)
  if(EXISTS ${pkg}/${d})
    message(FATAL_ERROR "the header-only Conan package has ${d}/")
  endif()
endforeach()
message(STATUS "package ${ref}:${id} in ${pkg}")
