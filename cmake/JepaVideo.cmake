# jepa::video — jepa::jepa plus the libraries behind the real-data input headers
# (jepa/io/video.hpp: FFmpeg's libavformat, libavcodec, libswscale, libavutil; jepa/io/image.hpp and
# jepa/io/png.hpp: stb_image / stb_image_write from Debian's libstb).
#
#   include(JepaVideo)                       # defines the target when FFmpeg and stb are found
#   jepa_link_video(my_program)              # links jepa::video, or fails with a clear message
#
# Sets JEPA_VIDEO_FOUND. FFmpeg is found through pkg-config (apt: libavformat-dev libavcodec-dev
# libswscale-dev libavutil-dev); stb through find_library(stb) (apt: libstb-dev), whose shared
# library already holds the stb implementations, so no translation unit defines
# JEPA_STB_IMAGE_IMPLEMENTATION / JEPA_PNG_IMPLEMENTATION.
include_guard(GLOBAL)

set(JEPA_VIDEO_FOUND OFF)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(JEPA_FFMPEG QUIET IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
endif()
find_library(JEPA_STB_LIBRARY NAMES stb)

if(TARGET PkgConfig::JEPA_FFMPEG AND JEPA_STB_LIBRARY)
  if(NOT TARGET jepa_video)
    add_library(jepa_video INTERFACE)
    add_library(jepa::video ALIAS jepa_video)
    target_link_libraries(jepa_video INTERFACE jepa::jepa PkgConfig::JEPA_FFMPEG ${JEPA_STB_LIBRARY})
  endif()
  set(JEPA_VIDEO_FOUND ON)
  message(STATUS "jepa: jepa::video available (FFmpeg ${JEPA_FFMPEG_libavformat_VERSION}, ${JEPA_STB_LIBRARY})")
else()
  message(STATUS "jepa: jepa::video unavailable (need pkg-config with libavformat/libavcodec/libswscale/libavutil, and libstb)")
endif()

# Links `target` against jepa::video (PRIVATE), or stops configuration naming what is missing.
function(jepa_link_video target)
  if(NOT TARGET jepa_video)
    message(FATAL_ERROR "jepa: ${target} needs jepa::video: install FFmpeg's development packages "
                        "(libavformat-dev libavcodec-dev libswscale-dev libavutil-dev) and libstb-dev")
  endif()
  target_link_libraries(${target} PRIVATE jepa::video)
endfunction()
