# Data-parallel training engines (jepa/dist/): MPI and NCCL. Both are optional; jepa::jepa never
# needs them.
#
#   jepa::mpi    jepa::jepa + MPI::MPI_CXX + JEPA_HAVE_MPI, for jepa/dist/mpi.hpp. Defined when CMake's
#                FindMPI finds an MPI (Debian: openmpi-bin libopenmpi-dev). Sets JEPA_MPI_FOUND.
#   jepa::nccl   jepa::cuda + libnccl + JEPA_HAVE_NCCL, for jepa/dist/nccl.cuh. Defined when
#                jepa::cuda is (JEPA_ENABLE_CUDA, AUTO by default) and nccl.h and libnccl are found. Sets JEPA_NCCL_FOUND.
#   JEPA_MPIEXEC_FLAGS                 launcher flags the project's MPI tests add (Open MPI: oversubscribe, root)
#   JEPA_NVCC, JEPA_NCCL_INCLUDE_DIR   nvcc and nccl.h wherever they are found, even with CUDA off:
#                the test suite compiles the NCCL path with them (tests/CMakeLists.txt), so a machine
#                without a GPU still checks that it builds.
include_guard(GLOBAL)

option(JEPA_USE_MPI "Define jepa::mpi (data-parallel training over MPI) when an MPI is found" ON)

set(JEPA_MPI_FOUND OFF)
if(JEPA_USE_MPI)
  set(MPI_CXX_SKIP_MPICXX ON)  # the C API only; the MPI-2 C++ bindings are not used
  find_package(MPI COMPONENTS CXX QUIET)
endif()
if(MPI_CXX_FOUND)
  if(NOT TARGET jepa_mpi)
    add_library(jepa_mpi INTERFACE)
    add_library(jepa::mpi ALIAS jepa_mpi)
    target_link_libraries(jepa_mpi INTERFACE jepa::jepa MPI::MPI_CXX)
    target_compile_definitions(jepa_mpi INTERFACE JEPA_HAVE_MPI)
  endif()
  set(JEPA_MPI_FOUND ON)
  # Launcher flags for the project's own MPI tests: Open MPI refuses to run as root without
  # --allow-run-as-root (CI containers) and more ranks than cores without --oversubscribe.
  set(JEPA_MPIEXEC_FLAGS "")
  if(MPIEXEC_EXECUTABLE)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _jepa_mpiexec_version ERROR_QUIET)
    if(_jepa_mpiexec_version MATCHES "Open MPI|OpenRTE")
      set(JEPA_MPIEXEC_FLAGS --oversubscribe --allow-run-as-root)
    endif()
  endif()
  message(STATUS "jepa: jepa::mpi available (MPI ${MPI_CXX_VERSION}, launcher ${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "jepa: jepa::mpi unavailable (no MPI found; Debian: apt install openmpi-bin libopenmpi-dev)")
endif()

# NCCL: nvcc and the header, for the compile check; the library, for jepa::nccl.
if(CMAKE_CUDA_COMPILER)
  set(JEPA_NVCC ${CMAKE_CUDA_COMPILER})
else()
  find_program(JEPA_NVCC nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH PATH_SUFFIXES bin
               PATHS /usr/local/cuda/bin /usr/local/cuda)
endif()
set(_jepa_cuda_hints)
if(JEPA_NVCC)
  get_filename_component(_jepa_nvcc_dir ${JEPA_NVCC} DIRECTORY)
  list(APPEND _jepa_cuda_hints ${_jepa_nvcc_dir}/..)
endif()
find_path(JEPA_NCCL_INCLUDE_DIR nccl.h HINTS ${_jepa_cuda_hints} ENV CUDA_HOME ENV NCCL_HOME
          PATH_SUFFIXES include PATHS /usr/local/cuda /usr)
find_library(JEPA_NCCL_LIBRARY nccl HINTS ${_jepa_cuda_hints} ENV CUDA_HOME ENV NCCL_HOME
             PATH_SUFFIXES lib64 lib lib/x86_64-linux-gnu PATHS /usr/local/cuda /usr)

set(JEPA_NCCL_FOUND OFF)
if(TARGET jepa_cuda AND JEPA_NCCL_INCLUDE_DIR AND JEPA_NCCL_LIBRARY)
  if(NOT TARGET jepa_nccl)
    add_library(jepa_nccl INTERFACE)
    add_library(jepa::nccl ALIAS jepa_nccl)
    target_link_libraries(jepa_nccl INTERFACE jepa::cuda ${JEPA_NCCL_LIBRARY})
    target_include_directories(jepa_nccl INTERFACE ${JEPA_NCCL_INCLUDE_DIR})
    target_compile_definitions(jepa_nccl INTERFACE JEPA_HAVE_NCCL)
  endif()
  set(JEPA_NCCL_FOUND ON)
  message(STATUS "jepa: jepa::nccl available (${JEPA_NCCL_LIBRARY})")
elseif(JEPA_NVCC AND JEPA_NCCL_INCLUDE_DIR)
  message(STATUS "jepa: NCCL headers found (${JEPA_NCCL_INCLUDE_DIR}): the NCCL path is compile-checked; "
                 "configure with -DJEPA_ENABLE_CUDA=ON for jepa::nccl and its GPU test")
endif()
