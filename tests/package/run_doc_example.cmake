# One documentation example as a test: build its program (the build fails the test with the
# compiler's output, whose #line directives name the Markdown file and line), then, with RUN=ON, run
# it; a non-zero exit fails the test.
#   cmake -DBUILD_DIR=<build> -DTARGET=<target> -DCONFIG=<config> -DEXE=<program> -DRUN=ON|OFF
#         -DWHERE=<doc.md:line> -P run_doc_example.cmake
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} --config ${CONFIG}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the example at ${WHERE} does not compile:\n${out}")
endif()
if(RUN)
  execute_process(COMMAND ${EXE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message(STATUS "${WHERE}:\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the example at ${WHERE} exited with ${rc}")
  endif()
else()
  message(STATUS "${WHERE}: compiles (compile-only: not run)")
endif()
