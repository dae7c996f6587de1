// jepa/io/media.hpp — one visual input (a video file, a folder of frames, or an image) to the clip an
// encoder consumes, preprocessed exactly as the reference's evaluation / hub pipeline (recipe_facts
// §8.4). Opt-in (FFmpeg + stb: link the jepa::video CMake target); not part of jepa.hpp.
//
//   kind       a directory → frame folder (its image files sorted by name = frames 0, 1, …);
//              an image extension (.png .jpg .jpeg .bmp .tga .gif .ppm .pgm .pnm) → image;
//              anything else → a video file, opened with libavformat (any container FFmpeg reads).
//   sampling   step = frame_step if > 0; else, with target_fps > 0, step = ceil(native fps) div
//              target_fps (V-JEPA 2's fps mode, data::frame_step_for_fps); else 1. The clip is the
//              reference's deterministic window (data::sample_clip_indices with random_start = false:
//              linspace over [start, start + frames·step), endpoint included, truncated; a video shorter
//              than that is padded with its last frame), shifted by `start`.
//              frames = 0 takes every step-th frame from `start` to the end, rounded down to a multiple
//              of `frames_multiple_of` (the tubelet), at least one multiple (padded when too short).
//   transform  crop > 0: data::EvalTransform — short side → int(crop·256/224) with OpenCV INTER_LINEAR
//              (bit-exact), centre crop crop×crop, /255, ImageNet mean/std; crop = 0: /255 and the
//              ImageNet normalisation only, at the native size.
//   output     (3,F,H,W) float, index ((c·F + f)·H + y)·W + x; an image is F = 1.
//
// Errors: a missing path, an unreadable or undecodable file (named, with FFmpeg's or stb's reason), an
// empty frame folder, frames of different sizes → jepa::IoError naming the file; bad options →
// ConfigError naming the field.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/data/folders.hpp"
#include "jepa/data/transforms.hpp"
#include "jepa/io/image.hpp"
#include "jepa/io/video.hpp"

namespace jepa::io {

enum class MediaKind : std::uint8_t { video, frame_folder, image };

constexpr const char* media_kind_name(MediaKind k) {
  return k == MediaKind::video ? "video" : k == MediaKind::frame_folder ? "frame folder" : "image";
}

struct MediaOptions {
  std::int64_t frames = 16;         ///< frames to sample; 0 = every step-th frame to the end
  int frame_step = 0;               ///< > 0: fixed step between sampled frames
  int target_fps = 0;               ///< > 0 (and frame_step = 0): step = ceil(native fps) div target_fps
  std::int64_t start = 0;           ///< first frame of the window
  int crop = 256;                   ///< EvalTransform crop; 0 = native size, normalisation only
  double folder_fps = 0;            ///< native rate of a frame folder (needed with target_fps)
  std::int64_t frames_multiple_of = 2;  ///< frames = 0: round the count down to a multiple of this
  std::int64_t max_frames = 4096;   ///< frames = 0: at most this many
  VideoReaderOptions reader{};

  void validate() const {
    check_field(frames >= 0, "MediaOptions.frames", frames, "must be >= 0 (0 = every step-th frame)");
    check_field(frame_step >= 0, "MediaOptions.frame_step", frame_step, "must be >= 0 (0 = from target_fps, else 1)");
    check_field(target_fps >= 0, "MediaOptions.target_fps", target_fps, "must be >= 0 (0 = off)");
    check_field(start >= 0, "MediaOptions.start", start, "must be >= 0");
    check_field(crop >= 0, "MediaOptions.crop", crop, "must be >= 0 (0 = native size)");
    check_field(frames_multiple_of >= 1, "MediaOptions.frames_multiple_of", frames_multiple_of, "must be >= 1");
    check_field(max_frames >= 1, "MediaOptions.max_frames", max_frames, "must be >= 1");
  }
};

/// A preprocessed input.
struct MediaClip {
  std::vector<float> pixels;           // (3,F,H,W)
  std::int64_t frames = 0, height = 0, width = 0;
  MediaKind kind = MediaKind::image;
  std::string source;                  // the path
  std::vector<std::int64_t> indices;   // source frame of every output frame
  int step = 1;                        // the frame step used
  double native_fps = 0;               // 0 when unknown (images, folders without folder_fps)
  int source_width = 0, source_height = 0;
};

namespace detail_media {
inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
inline bool is_image_name(const std::filesystem::path& p) {
  const std::string e = lower(p.extension().string());
  const auto& ex = data::image_extensions();
  return std::find(ex.begin(), ex.end(), e) != ex.end();
}
/// The source frame indices of the window (see the header comment).
inline std::vector<std::int64_t> window(std::int64_t len, const MediaOptions& o, int step, const std::string& path) {
  if (len <= 0) throw IoError(jepa::detail::cat("jepa: '", path, "' has no frames"));
  if (o.start >= len)
    fail_field("MediaOptions.start", o.start, jepa::detail::cat("'", path, "' has ", len, " frames; start must be < ", len));
  const std::int64_t avail = len - o.start;
  std::vector<std::int64_t> idx;
  if (o.frames == 0) {
    std::int64_t n = std::min<std::int64_t>((avail + step - 1) / step, o.max_frames);
    n = std::max<std::int64_t>(n / o.frames_multiple_of, 1) * o.frames_multiple_of;
    for (std::int64_t i = 0; i < n; ++i) idx.push_back(std::min(o.start + i * step, len - 1));
    return idx;
  }
  Rng unused(0, 0);
  idx = data::sample_clip_indices(avail, static_cast<int>(o.frames), step, unused, /*random_start=*/false);
  for (auto& i : idx) i += o.start;
  return idx;
}
inline std::vector<float> transform(const std::vector<RgbFrame>& frames, const MediaOptions& o, std::int64_t& h, std::int64_t& w) {
  if (o.crop > 0) {
    h = w = o.crop;
    return data::EvalTransform{o.crop}(frames);
  }
  h = frames[0].height, w = frames[0].width;
  return data::frames_to_clip(frames);
}
}  // namespace detail_media

/// What kind of input `path` is (see the header comment). IoError when it does not exist.
inline MediaKind media_kind(const std::filesystem::path& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st))
    throw IoError(jepa::detail::cat("jepa: input '", path.string(), "' does not exist (a video file, an image, or a folder of frames)"));
  if (std::filesystem::is_directory(st)) return MediaKind::frame_folder;
  return detail_media::is_image_name(path) ? MediaKind::image : MediaKind::video;
}

/// The sorted image files of a frame folder (IoError when it holds none).
inline std::vector<std::filesystem::path> frame_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.' && detail_media::is_image_name(e.path()))
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw IoError(jepa::detail::cat("jepa: frame folder '", dir.string(),
                                    "' holds no image files (.png, .jpg, .jpeg, .bmp, .tga, .gif, .ppm, .pgm, .pnm)"));
  return files;
}

/// Loads and preprocesses `path` (any MediaKind).
inline MediaClip load_media(const std::filesystem::path& path, const MediaOptions& opt = {}) {
  opt.validate();
  MediaClip c;
  c.kind = media_kind(path);
  c.source = path.string();
  std::vector<RgbFrame> frames;
  if (c.kind == MediaKind::image) {
    frames.push_back(read_image(c.source));
    c.indices = {0};
  } else if (c.kind == MediaKind::video) {
    VideoReader vr(c.source, opt.reader);
    std::int64_t len = vr.frame_count();
    if (len <= 0) len = vr.count_frames();
    c.native_fps = vr.fps();
    if (opt.frame_step > 0) c.step = opt.frame_step;
    else if (opt.target_fps > 0) {
      if (!(c.native_fps > 0))
        throw IoError(jepa::detail::cat("jepa: video file '", c.source, "' declares no frame rate, needed for target_fps (use frame_step)"));
      c.step = data::frame_step_for_fps(c.native_fps, opt.target_fps);
    }
    c.indices = detail_media::window(len, opt, c.step, c.source);
    frames = vr.read_frames(c.indices);
  } else {
    const auto files = frame_files(path);
    c.native_fps = opt.folder_fps;
    if (opt.frame_step > 0) c.step = opt.frame_step;
    else if (opt.target_fps > 0) {
      if (!(opt.folder_fps > 0))
        throw ConfigError(jepa::detail::cat("jepa: frame folder '", c.source,
                                            "': target_fps needs MediaOptions.folder_fps (the frames' native rate)"));
      c.step = data::frame_step_for_fps(opt.folder_fps, opt.target_fps);
    }
    c.indices = detail_media::window(static_cast<std::int64_t>(files.size()), opt, c.step, c.source);
    std::int64_t prev = -1;
    for (const auto i : c.indices) {
      if (i == prev) {  // a repeated index (padding of a short folder): the same frame again
        frames.push_back(frames.back());
        continue;
      }
      prev = i;
      const std::string f = files[static_cast<std::size_t>(i)].string();
      frames.push_back(read_image(f));
      if (frames.back().width != frames[0].width || frames.back().height != frames[0].height)
        throw IoError(jepa::detail::cat("jepa: frame file '", f, "' is ", frames.back().width, "x", frames.back().height,
                                        " but the folder's first sampled frame is ", frames[0].width, "x", frames[0].height));
    }
  }
  c.source_width = frames[0].width, c.source_height = frames[0].height;
  c.pixels = detail_media::transform(frames, opt, c.height, c.width);
  c.frames = static_cast<std::int64_t>(frames.size());
  return c;
}

}  // namespace jepa::io
