# Builds and runs tests/package/consumer against jepa, one way per MODE:
#   find_package      the installed, relocated prefix (package_install), configured with the consumer's
#                     CMake preset `release`; then configure-only probes of the package's version
#                     check, its components and its options
#   add_subdirectory  the jepa source tree added with add_subdirectory()
#   cmake -DMODE=... -DSOURCE_DIR=<jepa source> -DWORK=<scratch> [-DPREFIX=<prefix>] -DCXX=<compiler>
#         -DGENERATOR=<generator> [-DHAVE_BLAS=ON] [-DHAVE_ONEDNN=ON] [-DHAVE_VIDEO=ON] [-DHAVE_CUDA=ON] [-DHAVE_MPI=ON] -P check_consumer.cmake
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/package_common.cmake)
set(consumer ${CMAKE_CURRENT_LIST_DIR}/consumer)
set(common -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX})

if(MODE STREQUAL "find_package")
  set(bin ${WORK}/consumer-find_package)
  file(REMOVE_RECURSE ${bin})
  jepa_step("find_package: configure (cmake --preset release)" WORKING_DIRECTORY ${consumer}
            COMMAND ${CMAKE_COMMAND} --preset release -B ${bin} ${common} -DCMAKE_PREFIX_PATH=${PREFIX}
            EXPECT_OUTPUT "consumer: jepa 0\\.[0-9]+\\.[0-9]+ from ${PREFIX}/share/cmake/jepa")
  jepa_step("find_package: build" COMMAND ${CMAKE_COMMAND} --build ${bin})
  jepa_step("find_package: run" COMMAND ${bin}/consumer EXPECT_OUTPUT "features \\(1, 32, 64\\)")
  message(STATUS "find_package: ${JEPA_STEP_OUTPUT}")

  # Configure-only probes: a tiny project whose find_package call is given by -DPROBE=...
  set(probe ${WORK}/probe-src)
  file(MAKE_DIRECTORY ${probe})
  file(WRITE ${probe}/CMakeLists.txt [=[
cmake_minimum_required(VERSION 3.25)
project(jepa_probe LANGUAGES CXX)
separate_arguments(args UNIX_COMMAND "${PROBE}")
find_package(jepa ${args})
string(REPLACE "," ";" EXPECT_TARGETS "${EXPECT_TARGETS}")
string(REPLACE "," ";" EXPECT_NO_TARGETS "${EXPECT_NO_TARGETS}")
foreach(t IN LISTS EXPECT_TARGETS)
  if(NOT TARGET ${t})
    message(FATAL_ERROR "probe: target ${t} missing")
  endif()
endforeach()
foreach(t IN LISTS EXPECT_NO_TARGETS)
  if(TARGET ${t})
    message(FATAL_ERROR "probe: target ${t} exists but was not asked for")
  endif()
endforeach()
get_target_property(defs jepa::jepa INTERFACE_COMPILE_DEFINITIONS)
get_target_property(libs jepa::jepa INTERFACE_LINK_LIBRARIES)
message(STATUS "probe: jepa::jepa definitions [${defs}] links [${libs}]")
if(EXPECT_DEFINITION AND NOT EXPECT_DEFINITION IN_LIST defs)
  message(FATAL_ERROR "probe: jepa::jepa lacks the definition ${EXPECT_DEFINITION}")
endif()
if(EXPECT_NO_DEFINITION AND EXPECT_NO_DEFINITION IN_LIST defs)
  message(FATAL_ERROR "probe: jepa::jepa has the definition ${EXPECT_NO_DEFINITION}")
endif()
if(EXPECT_NO_LINK AND EXPECT_NO_LINK IN_LIST libs)
  message(FATAL_ERROR "probe: jepa::jepa links ${EXPECT_NO_LINK}")
endif()
]=])
  function(probe name args)
    file(REMOVE_RECURSE ${WORK}/probe-bin)
    jepa_step("probe ${name}" COMMAND ${CMAKE_COMMAND} -S ${probe} -B ${WORK}/probe-bin ${common}
              -DCMAKE_PREFIX_PATH=${PREFIX} "-DPROBE=${args}" ${ARGN})
    set(JEPA_STEP_OUTPUT "${JEPA_STEP_OUTPUT}" PARENT_SCOPE)
  endfunction()
  # Components are created only when asked for; an optional missing one never hides jepa::jepa.
  set(blas_expect "")
  if(HAVE_ONEDNN)  # the installing build used oneDNN: the config finds it again as the GEMM provider
    set(blas_expect -DEXPECT_DEFINITION=JEPA_HAVE_ONEDNN)
  elseif(HAVE_BLAS)  # the installing build used a BLAS: the config finds it again
    set(blas_expect -DEXPECT_DEFINITION=JEPA_HAVE_BLAS)
  endif()
  probe("no components" "0.1 CONFIG REQUIRED" "-DEXPECT_TARGETS=jepa::jepa" "-DEXPECT_NO_TARGETS=jepa::video,jepa::cuda,jepa::mpi"
        ${blas_expect})
  probe("optional components" "CONFIG REQUIRED OPTIONAL_COMPONENTS video cuda mpi" "-DEXPECT_TARGETS=jepa::jepa")
  # The version file: 0.x is compatible within its minor version only.
  probe("incompatible version" "0.99 CONFIG REQUIRED" EXPECT_FAIL EXPECT_OUTPUT "compatible[ \n]+with requested version \"0\\.99\"")
  probe("unknown component" "CONFIG REQUIRED COMPONENTS no_such_part" EXPECT_FAIL
        EXPECT_OUTPUT "unknown component 'no_such_part'")
  probe("JEPA_USE_BLAS=OFF" "CONFIG REQUIRED" -DJEPA_USE_BLAS=OFF -DEXPECT_NO_DEFINITION=JEPA_HAVE_BLAS)
  probe("JEPA_USE_ONEDNN=OFF" "CONFIG REQUIRED" -DJEPA_USE_ONEDNN=OFF -DEXPECT_NO_DEFINITION=JEPA_HAVE_ONEDNN)
  probe("JEPA_USE_OPENMP=OFF" "CONFIG REQUIRED" -DJEPA_USE_OPENMP=OFF -DEXPECT_NO_LINK=OpenMP::OpenMP_CXX)
  if(HAVE_VIDEO)
    probe("COMPONENTS video" "CONFIG REQUIRED COMPONENTS video" "-DEXPECT_TARGETS=jepa::jepa,jepa::video")
  endif()
  if(HAVE_MPI)
    probe("COMPONENTS mpi" "CONFIG REQUIRED COMPONENTS mpi" "-DEXPECT_TARGETS=jepa::jepa,jepa::mpi")
  endif()
  if(HAVE_CUDA)
    probe("COMPONENTS cuda" "CONFIG REQUIRED COMPONENTS cuda" "-DEXPECT_TARGETS=jepa::jepa,jepa::cuda")
  else()
    message(STATUS "no CUDA Toolkit here: the cuda component is checked as optional only")
  endif()

elseif(MODE STREQUAL "add_subdirectory")
  message(STATUS "add_subdirectory: compiler ${CXX}")
  jepa_build_and_run_consumer("add_subdirectory" ${consumer} ${WORK}/consumer-add_subdirectory ${common}
                              -DJEPA_CONSUMER_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release
                              "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG")
  # As a subproject jepa builds none of its own tests, examples or benchmarks.
  foreach(t test_core encode_clip bench_encoder)
    if(EXISTS ${WORK}/consumer-add_subdirectory/jepa/tests/${t} OR EXISTS ${WORK}/consumer-add_subdirectory/jepa/examples/${t})
      message(FATAL_ERROR "add_subdirectory built jepa's own program ${t}")
    endif()
  endforeach()
else()
  message(FATAL_ERROR "MODE must be find_package or add_subdirectory, not '${MODE}'")
endif()
